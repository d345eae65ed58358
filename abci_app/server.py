"""ABCI 2.0 socket server for CometBFT v0.38, in py-abci's spirit.

py-abci speaks Tendermint 0.34 only, so this is the small replacement: a base class with one
synchronous method per ABCI call, and an asyncio server that speaks CometBFT's socket protocol.

Wire protocol (checked against abci/server/socket_server.go and abci/types/messages.go):
every message is an *unsigned* varint length followed by that many bytes of a protobuf
`Request` (CometBFT to app) or `Response` (app to CometBFT); v0.34 used a zigzag varint.
Each of CometBFT's four connections is one ordered stream: responses go back in request order,
and CometBFT pairs them with its requests purely by position. CometBFT buffers requests until
it sends a `Flush`, so a synchronous call arrives as `[X][Flush]`; the `ResponseFlush` is what
releases it, hence the writer is drained on every Flush.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import traceback

from tendermint.abci import types_pb2 as abci

log = logging.getLogger("abci_app.server")

# A 64-bit varint takes at most 10 bytes; anything longer is garbage, not a length.
MAX_VARINT_BYTES = 10
# Drain the socket when this much is buffered even without a Flush, so pipelined CheckTx
# answers cannot pile up in memory unboundedly.
_DRAIN_AT_BYTES = 1 << 20


class FramingError(Exception):
    """The peer sent bytes that are not a valid length-delimited protobuf message."""


# ---------------------------------------------------------------------------------------------
# Framing helpers (pure functions, so they can be tested without sockets).


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 varint, as Go's binary.PutUvarint writes it."""
    if value < 0:
        raise ValueError("varint length must be non-negative")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int = 0) -> tuple[int, int] | None:
    """Decode a varint from `data[pos:]`: (value, position after it), or None if incomplete."""
    value = shift = 0
    for i in range(pos, min(len(data), pos + MAX_VARINT_BYTES)):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    if len(data) - pos >= MAX_VARINT_BYTES:
        raise FramingError("varint longer than 10 bytes")
    return None


def frame(payload: bytes) -> bytes:
    """Length-prefix one serialized message."""
    return encode_varint(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """Read one length-delimited message body; None on a clean EOF between messages.

    The body may span any number of TCP reads and has no size cap (CometBFT's own limit is 2 GiB).
    Raises FramingError on an over-long varint and asyncio.IncompleteReadError on EOF mid-message.
    """
    length = shift = 0
    for i in range(MAX_VARINT_BYTES):
        first = await reader.read(1)
        if not first:
            if i == 0:
                return None
            raise asyncio.IncompleteReadError(b"", None)
        byte = first[0]
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return await reader.readexactly(length) if length else b""
        shift += 7
    raise FramingError("varint longer than 10 bytes")


# ---------------------------------------------------------------------------------------------
# Application interface.


class BaseApplication:
    """One plain method per ABCI call: request protobuf in, response protobuf out.

    Methods are synchronous on purpose: the state machine is CPU-bound and CometBFT's calls must
    be applied strictly in order. Defaults mirror CometBFT's Go `BaseApplication`.
    Report failures as codes (CheckTx/ExecTxResult code, ProcessProposal REJECT): a raised
    exception becomes a ResponseException, which makes CometBFT halt.
    """

    def echo(self, req: abci.RequestEcho) -> abci.ResponseEcho:
        return abci.ResponseEcho(message=req.message)

    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo:
        return abci.ResponseInfo()

    def init_chain(self, req: abci.RequestInitChain) -> abci.ResponseInitChain:
        return abci.ResponseInitChain()

    def query(self, req: abci.RequestQuery) -> abci.ResponseQuery:
        return abci.ResponseQuery(code=0)

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        return abci.ResponseCheckTx(code=0)

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        return abci.ResponseCommit()

    def list_snapshots(self, req: abci.RequestListSnapshots) -> abci.ResponseListSnapshots:
        return abci.ResponseListSnapshots()

    def offer_snapshot(self, req: abci.RequestOfferSnapshot) -> abci.ResponseOfferSnapshot:
        # No state sync support: refuse every snapshot so CometBFT falls back to block sync.
        return abci.ResponseOfferSnapshot(result=abci.ResponseOfferSnapshot.REJECT)

    def load_snapshot_chunk(self, req: abci.RequestLoadSnapshotChunk) -> abci.ResponseLoadSnapshotChunk:
        return abci.ResponseLoadSnapshotChunk()

    def apply_snapshot_chunk(self, req: abci.RequestApplySnapshotChunk) -> abci.ResponseApplySnapshotChunk:
        return abci.ResponseApplySnapshotChunk(result=abci.ResponseApplySnapshotChunk.ABORT)

    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        """Keep the mempool's txs, in order, while their total size fits in max_tx_bytes."""
        txs, total = [], 0
        for tx in req.txs:
            total += len(tx)
            if total > req.max_tx_bytes:
                break
            txs.append(tx)
        return abci.ResponsePrepareProposal(txs=txs)

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.ACCEPT)

    def extend_vote(self, req: abci.RequestExtendVote) -> abci.ResponseExtendVote:
        return abci.ResponseExtendVote()

    def verify_vote_extension(self, req: abci.RequestVerifyVoteExtension) -> abci.ResponseVerifyVoteExtension:
        return abci.ResponseVerifyVoteExtension(status=abci.ResponseVerifyVoteExtension.ACCEPT)

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        return abci.ResponseFinalizeBlock(tx_results=[abci.ExecTxResult(code=0) for _ in req.txs])


# The oneof field names of Request are also the method names and the Response field names.
_CALLS = frozenset(f.name for f in abci.Request.DESCRIPTOR.oneofs_by_name["value"].fields) - {"flush"}
_RESPONSE_TYPES = {name: getattr(abci, "Response" + "".join(w.title() for w in name.split("_"))) for name in _CALLS}


# ---------------------------------------------------------------------------------------------
# Server.


def _parse_address(address: str) -> str | tuple[str, int]:
    """'tcp://host:port' -> (host, port); 'unix:///path' -> '/path'."""
    if address.startswith("unix://"):
        return address[len("unix://") :]
    if address.startswith("tcp://"):
        address = address[len("tcp://") :]
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"address needs a port: {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class ABCIServer:
    """Serves one application on every connection CometBFT opens (consensus, mempool, query, snapshot).

    All connections share the app and the single event-loop thread; since app methods are
    synchronous, two calls never interleave (like the Go server's global app mutex).
    """

    def __init__(self, app: BaseApplication) -> None:
        self.app = app
        self._server: asyncio.base_events.Server | None = None
        self._next_conn_id = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, address: str) -> asyncio.base_events.Server:
        """Listen on `address` and return the asyncio server (port 0 picks a free TCP port)."""
        where = _parse_address(address)
        if isinstance(where, str):  # a unix socket path
            # A socket file left over from a previous run would make bind fail.
            if os.path.exists(where) and stat.S_ISSOCK(os.stat(where).st_mode):
                os.unlink(where)
            self._server = await asyncio.start_unix_server(self._handle_connection, path=where)
        else:
            host, port = where
            self._server = await asyncio.start_server(self._handle_connection, host, port)
        log.info("ABCI server listening on %s", address)
        return self._server

    async def serve(self, address: str) -> None:
        """Listen on `address` and serve until cancelled."""
        server = await self.start(address)
        async with server:
            await server.serve_forever()

    def run(self, address: str) -> None:
        """Blocking entry point: serve `address` until interrupted."""
        try:
            asyncio.run(self.serve(address))
        except KeyboardInterrupt:
            log.info("ABCI server stopped")

    def close(self) -> None:
        """Stop listening and hang up on every open connection (as the Go server's OnStop does)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    # -- per-connection loop --------------------------------------------------------------------

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        peer = writer.get_extra_info("peername") or "unix socket"
        log.info("connection %d opened (%s)", conn_id, peer)
        self._writers.add(writer)
        served = 0
        try:
            while True:
                body = await read_frame(reader)
                if body is None:
                    log.info("connection %d closed by peer after %d requests", conn_id, served)
                    return
                req = abci.Request()
                try:
                    req.ParseFromString(body)
                except Exception as exc:  # protobuf's DecodeError, or worse
                    raise FramingError(f"undecodable request ({len(body)} bytes): {exc}") from exc
                resp = self.handle_request(req)
                served += 1
                writer.write(frame(resp.SerializeToString()))
                kind = resp.WhichOneof("value")
                if kind in ("flush", "exception") or writer.transport.get_write_buffer_size() > _DRAIN_AT_BYTES:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            log.info("connection %d closed by peer (%s)", conn_id, type(exc).__name__)
        except FramingError as exc:
            log.error("connection %d: malformed frame, closing it: %s", conn_id, exc)
        except asyncio.CancelledError:
            # Only at shutdown; nobody awaits this task, so re-raising would just log noise.
            log.info("connection %d cancelled", conn_id)
        finally:
            self._writers.discard(writer)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass
            log.debug("connection %d finished", conn_id)

    def handle_request(self, req: abci.Request) -> abci.Response:
        """Dispatch one Request to the app; any app error becomes a ResponseException."""
        kind = req.WhichOneof("value")
        if kind == "flush":
            return abci.Response(flush=abci.ResponseFlush())
        if kind not in _CALLS:
            return abci.Response(exception=abci.ResponseException(error=f"unknown request: {kind}"))
        try:
            result = getattr(self.app, kind)(getattr(req, kind))
            expected = _RESPONSE_TYPES[kind]
            if not isinstance(result, expected):
                raise TypeError(f"{kind} returned {type(result).__name__}, expected {expected.__name__}")
            return abci.Response(**{kind: result})
        except Exception:
            tb = traceback.format_exc()
            log.error("application error in %s:\n%s", kind, tb)
            return abci.Response(exception=abci.ResponseException(error=f"{kind}: {tb.strip().splitlines()[-1]}"))
