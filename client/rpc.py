"""A small CometBFT v0.38 JSON-RPC client: stdlib `urllib` + `json`, no other dependency.

Every call is a POST of a JSON-RPC 2.0 body with params as an object (URI/GET calls cap the size
of a tx and need their own quoting rules). CometBFT decodes the params with its own JSON codec
(rpc/jsonrpc/server/http_json_handler.go -> libs/json), which means:
  - `[]byte` params such as `tx` (types.Tx) are base64 strings,
  - `bytes.HexBytes` params such as `abci_query`'s `data` are hex strings,
  - int64 params such as `height` are decimal strings.
"""

import base64
import http.client
import itertools
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from client.endpoints import DEFAULT_NODE


class NodeUnavailable(Exception):
    """The node could not be reached (refused, timed out, connection dropped)."""


class RPCError(Exception):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: str = ""):
        self.method, self.code, self.message, self.data = method, code, message, data
        super().__init__(f"{method}: RPC error {code}: {message}" + (f" ({data})" if data else ""))


@dataclass
class TxResult:
    """CheckTx's answer to broadcast_tx_sync; `hash` is the tx hash in upper-case hex."""

    code: int
    log: str
    codespace: str
    hash: str
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class IncludedTx:
    """A tx as its block decided it (DeliverTx's result): code 0, or why the block refused it."""

    hash: str
    height: int
    code: int
    codespace: str
    log: str

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class QueryResult:
    """ABCI Query's answer; `value` is already base64-decoded."""

    code: int
    log: str
    value: bytes
    height: int
    key: bytes = b""
    codespace: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0


def _at(height: int | None) -> dict[str, str]:
    """The optional height param (latest when absent)."""
    return {"height": str(height)} if height else {}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class CometRPC:
    """Client for one node's RPC endpoint (`rpc.laddr`, default http://127.0.0.1:26657)."""

    def __init__(self, url: str = DEFAULT_NODE, timeout: float = 10):
        if "://" not in url:
            url = "http://" + url
        self.url = url.replace("tcp://", "http://", 1).rstrip("/")
        self.timeout = timeout
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"CometRPC({self.url!r})"

    # -- transport ---------------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> dict:
        """POST one JSON-RPC request; return its `result` object."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or {}}).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            # CometBFT answers JSON-RPC errors with HTTP 500 and a JSON body: report that body.
            raw = err.read()
            if not raw:
                raise RPCError(method, err.code, f"HTTP {err.code} {_one_line(err.reason)}") from None
        except urllib.error.URLError as err:
            raise NodeUnavailable(
                f"CometBFT RPC at {self.url} is unreachable ({method}): {_one_line(err.reason)}"
            ) from None
        except (OSError, http.client.HTTPException) as err:  # timeouts, resets, remote disconnects
            reason = "timed out" if isinstance(err, (socket.timeout, TimeoutError)) else err
            raise NodeUnavailable(
                f"CometBFT RPC at {self.url} is unreachable ({method}): {_one_line(reason) or type(err).__name__}"
            ) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise RPCError(method, -1, f"answer is not JSON: {_one_line(raw[:200].decode(errors='replace'))}") from None
        if answer.get("error"):
            error = answer["error"]
            raise RPCError(
                method,
                int(error.get("code", -1)),
                _one_line(error.get("message", "")),
                _one_line(error.get("data", "")),
            )
        return answer.get("result", {})

    # -- info --------------------------------------------------------------------------------

    def status(self) -> dict:
        """`/status`: node_info, sync_info (latest_block_height, latest_app_hash, catching_up), validator_info."""
        return self.call("status")

    def latest_height(self) -> int:
        return int(self.status()["sync_info"]["latest_block_height"])

    def net_info(self) -> dict:
        return self.call("net_info")

    def health(self) -> dict:
        return self.call("health")

    def block(self, height: int | None = None) -> dict:
        return self.call("block", _at(height))

    def commit(self, height: int | None = None) -> dict:
        return self.call("commit", _at(height))

    def block_results(self, height: int | None = None) -> dict:
        """`/block_results`: txs_results, finalize_block_events, app_hash of that height."""
        return self.call("block_results", _at(height))

    def wait_for_height(self, height: int, timeout: float = 30, poll: float = 0.1) -> int:
        """Poll until the node's latest height is >= `height`; return it. TimeoutError otherwise.

        An unreachable node counts as "not there yet" until the deadline (nodes restart)."""
        deadline = time.monotonic() + timeout
        last, error = None, None
        while True:
            try:
                last = self.latest_height()
                error = None
                if last >= height:
                    return last
            except NodeUnavailable as err:
                error = err
            if time.monotonic() >= deadline:
                seen = f"last height {last}" if error is None else str(error)
                raise TimeoutError(f"{self.url} did not reach height {height} within {timeout}s ({seen})")
            time.sleep(poll)

    # -- txs ---------------------------------------------------------------------------------

    def broadcast_tx_sync(self, tx: bytes) -> TxResult:
        """Submit a tx and return its CheckTx result (it is in the mempool iff code == 0)."""
        result = self.call("broadcast_tx_sync", {"tx": base64.b64encode(tx).decode()})
        return TxResult(
            code=int(result.get("code", 0)),
            log=result.get("log", ""),
            codespace=result.get("codespace", ""),
            hash=result.get("hash", ""),
            data=base64.b64decode(result.get("data") or ""),
        )

    def broadcast_tx_commit(self, tx: bytes, timeout: float | None = None) -> dict:
        """Submit a tx and wait for its block: {check_tx, tx_result, hash, height}.

        CometBFT waits up to `rpc.timeout_broadcast_tx_commit` (default 10 s) itself."""
        return self.call(
            "broadcast_tx_commit", {"tx": base64.b64encode(tx).decode()}, timeout=timeout or max(self.timeout, 15)
        )

    def tx(self, tx_hash: str) -> IncludedTx | None:
        """A committed tx by its hash (hex), from the node's tx index; None while it is in no block."""
        try:
            result = self.call("tx", {"hash": base64.b64encode(bytes.fromhex(tx_hash)).decode()})
        except RPCError as err:
            if "not found" in f"{err.message} {err.data}":
                return None
            raise
        outcome = result.get("tx_result", {})
        return IncludedTx(
            hash=result.get("hash", tx_hash.upper()),
            height=int(result["height"]),
            code=int(outcome.get("code", 0)),
            codespace=outcome.get("codespace", ""),
            log=outcome.get("log", ""),
        )

    def wait_for_tx(self, tx_hash: str, timeout: float = 30, poll: float = 0.2) -> IncludedTx:
        """The tx's block result as soon as it is committed; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            included = self.tx(tx_hash)
            if included is not None:
                return included
            if time.monotonic() > deadline:
                raise TimeoutError(f"tx {tx_hash} was in no block within {timeout:g}s (dropped, or still waiting)")
            time.sleep(poll)

    # -- queries -----------------------------------------------------------------------------

    def abci_query(self, path: str, data: bytes = b"", height: int = 0, prove: bool = False) -> QueryResult:
        """ABCI Query at `path` with `data` (sent as hex), at `height` (0 = latest committed)."""
        params: dict[str, Any] = {"path": path, "data": data.hex(), "prove": prove}
        if height:
            params["height"] = str(height)
        response = self.call("abci_query", params)["response"]
        return QueryResult(
            code=int(response.get("code", 0)),
            log=response.get("log", ""),
            value=base64.b64decode(response.get("value") or ""),
            height=int(response.get("height", 0) or 0),
            key=base64.b64decode(response.get("key") or ""),
            codespace=response.get("codespace", ""),
        )
