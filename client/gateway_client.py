"""A participant's connection to the chain: the Gateway's gRPC stubs with retries and clear errors.

Calls that fail because the gateway or its node is unreachable (UNAVAILABLE, DEADLINE_EXCEEDED,
RESOURCE_EXHAUSTED) are retried with exponential backoff until `retry_for` seconds have passed;
each retry logs one line. A tx is retried as the very same signed bytes, so a retry can never be
included twice: its nonce is spent by the first copy (and CometBFT's cache refuses the copy).
"""

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from abci_app.codes import code_name
from client.endpoints import DEFAULT_GATEWAY
from flchain.v1 import gateway_pb2 as gw
from flchain.v1 import gateway_pb2_grpc, query_pb2, types_pb2

log = logging.getLogger("flchain.client")

# An update is one message and gRPC's default cap (4 MiB) equals the chain's default max tx size.
MAX_MESSAGE_BYTES = 64 << 20
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
CALL_TIMEOUT_S = 30


class ChainError(Exception):
    """Something the chain or the gateway said no to; the message is one line."""


class Unavailable(ChainError):
    """The gateway or its node could not be reached, even after retrying."""


class NotFound(ChainError):
    pass


class TxRejected(ChainError):
    def __init__(self, code: int, codespace: str, log_line: str):
        self.code, self.codespace, self.log = code, codespace, log_line
        name = code_name(code, codespace) or codespace
        super().__init__(f"tx rejected (code {code} {name}): {log_line}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _transient(err: BaseException) -> bool:
    return isinstance(err, grpc.RpcError) and err.code() in TRANSIENT


class GatewayClient:
    def __init__(self, target: str = DEFAULT_GATEWAY, retry_for: float = 60.0, tls_ca: bytes | None = None):
        """tls_ca: PEM certificates to verify a TLS gateway against (None: a plaintext gateway)."""
        self.target = target
        self.retry_for = retry_for
        if tls_ca is None:
            self._channel = grpc.insecure_channel(target, options=GRPC_OPTIONS)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca)
            self._channel = grpc.secure_channel(target, credentials, options=GRPC_OPTIONS)
        self.stub = gateway_pb2_grpc.GatewayStub(self._channel)
        self._chain_id: str | None = None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "GatewayClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _retrying(self, method: str) -> Retrying:
        def say(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome else None
            if not isinstance(err, grpc.RpcError):
                return
            log.warning(
                "gateway %s: %s failed (%s); retry %d in %.1fs",
                self.target,
                method,
                _one_line(err.details() or err.code().name),
                state.attempt_number,
                state.upcoming_sleep,
            )

        return Retrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_delay(self.retry_for),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
            before_sleep=say,
        )

    def _call(self, method: str, request: Any) -> Any:
        """One unary call, retried while transient; gRPC errors become ChainErrors."""
        try:
            return self._retrying(method)(getattr(self.stub, method), request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as err:
            raise self._error(method, err) from None

    def _error(self, method: str, err: grpc.RpcError) -> ChainError:
        detail = _one_line(err.details() or err.code().name)
        if err.code() in TRANSIENT:
            return Unavailable(
                f"gateway {self.target} unreachable ({method}, gave up after {self.retry_for:.0f}s): {detail}"
            )
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return NotFound(detail)
        return ChainError(f"{method} failed ({err.code().name.lower()}): {detail}")

    # -- queries -----------------------------------------------------------------------------

    def node_info(self) -> gw.NodeInfo:
        return self._call("GetNodeInfo", gw.GetNodeInfoRequest())

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = self.node_info().chain_id
        return self._chain_id

    def params(self) -> types_pb2.Params:
        return self._call("GetParams", gw.GetParamsRequest())

    def round(self, round_id: int = 0) -> types_pb2.Round:
        return self._call("GetRound", gw.GetRoundRequest(id=round_id))

    def participant(self, address: str) -> query_pb2.ParticipantInfo:
        return self._call("GetParticipant", gw.GetParticipantRequest(address=address))

    def participants(self) -> list[types_pb2.Participant]:
        return list(self._call("ListParticipants", gw.ListParticipantsRequest()).participants)

    def account(self, address: str) -> types_pb2.Account:
        return self._call("GetAccount", gw.GetAccountRequest(address=address))

    def model(self) -> types_pb2.GlobalModel:
        return self._call("GetModel", gw.GetModelRequest())

    def candidate(self) -> types_pb2.Candidate:
        return self._call("GetCandidate", gw.GetCandidateRequest())

    def updates(self) -> list[types_pb2.Update]:
        """The updates under vote, in Round.submitted order."""
        return list(self._call("GetUpdates", gw.GetUpdatesRequest()).updates)

    # -- txs ---------------------------------------------------------------------------------

    def broadcast(self, tx: bytes) -> gw.BroadcastTxResponse:
        """CheckTx's answer for a signed tx.

        Bytes the node already holds count as sent: CometBFT's cache keeps only txs that passed
        CheckTx, so an identical copy (our own retry, or a restarted client signing the same
        update again) is already on its way into a block."""
        try:
            return self._retrying("BroadcastTx")(
                self.stub.BroadcastTx, gw.BroadcastTxRequest(tx=tx), timeout=CALL_TIMEOUT_S
            )
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.ALREADY_EXISTS:
                return gw.BroadcastTxResponse(code=0, log="the node already holds this very tx")
            raise self._error("BroadcastTx", err) from None

    # -- stream ------------------------------------------------------------------------------

    def watch_rounds(self, address: str = "") -> "RoundWatch":
        """Round events for `address` (bech32, optional: fills the role), until cancelled."""
        return RoundWatch(self, address)


class RoundWatch:
    """An endless stream of RoundEvents. A broken stream is re-opened with backoff, and the first
    event after a reconnect is the current round, so the watcher never loses track of where it is.
    Only `retry_for` seconds without any connection end it (Unavailable); `cancel()` ends it at once."""

    def __init__(self, client: GatewayClient, address: str):
        self.client, self.address = client, address
        self._call: Any = None  # the open gRPC stream
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()
        if self._call is not None:
            self._call.cancel()

    def __iter__(self) -> Iterator[gw.RoundEvent]:
        failing_since, delay = None, 0.2
        while not self._cancelled.is_set():
            try:
                self._call = self.client.stub.WatchRounds(gw.WatchRoundsRequest(address=self.address))
                for event in self._call:
                    failing_since, delay = None, 0.2
                    yield event
                reason = "the gateway closed the stream"
            except grpc.RpcError as err:
                # CANCELLED also arrives when a gateway shuts down, so only our own cancel() ends the watch.
                if self._cancelled.is_set():
                    return
                if not (_transient(err) or err.code() == grpc.StatusCode.CANCELLED):
                    raise self.client._error("WatchRounds", err) from None
                reason = _one_line(err.details() or err.code().name)
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since > self.client.retry_for:
                raise Unavailable(
                    f"round stream from gateway {self.client.target} lost for {self.client.retry_for:.0f}s: {reason}"
                )
            log.warning("round stream from %s lost (%s); reconnecting in %.1fs", self.client.target, reason, delay)
            self._cancelled.wait(delay)
            delay = min(delay * 2, 5.0)
