"""The chain's current round, followed through CometBFT's event stream and fanned out to watchers.

One thread holds a websocket subscription to `NewBlockEvents` (small: no tx bytes) on the node's
RPC. After every block it reads the current round with an ABCI query and, when the round id or
phase changed, publishes a new snapshot. Watchers block on `wait()` for a snapshot newer than the
one they saw. A dropped subscription is re-opened with backoff; since a snapshot is the round's
state rather than a diff, nothing is lost across a reconnect.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from abci_app import query_paths as qp
from client.rpc import CometRPC, NodeUnavailable, RPCError
from flchain.v1 import types_pb2

log = logging.getLogger("gateway.feed")
SUBSCRIPTION = "tm.event='NewBlockEvents'"
MAX_BACKOFF_S = 5.0


@dataclass(frozen=True)
class Snapshot:
    version: int  # increases with every published snapshot
    height: int  # block after which this state was read
    round: types_pb2.Round  # the current round
    finished: types_pb2.Round | None  # the round tallied since the previous snapshot, if any


def websocket_url(rpc_url: str) -> str:
    return rpc_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/websocket"


class RoundFeed:
    def __init__(self, rpc: CometRPC):
        self.rpc = rpc
        self._changed = threading.Condition()
        self._latest: Snapshot | None = None
        self._refreshing = threading.Lock()  # the follower and a first watcher may refresh at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="round-feed", daemon=True)
        self._listeners: list[Callable[[Snapshot], object]] = []

    def on_publish(self, listener: Callable[[Snapshot], object]) -> None:
        """Call listener(snapshot) (on the publishing thread) after each new snapshot."""
        self._listeners.append(listener)

    def start(self) -> "RoundFeed":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def latest(self) -> Snapshot | None:
        with self._changed:
            return self._latest

    def wait(self, after_version: int, timeout: float) -> Snapshot | None:
        """The newest snapshot if it is newer than after_version, waiting up to timeout; else None."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._stop.is_set() or (self._latest is not None and self._latest.version > after_version),
                timeout,
            )
            latest = self._latest
        return latest if latest is not None and latest.version > after_version else None

    # -- the following thread ----------------------------------------------------------------

    def _follow(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with connect(websocket_url(self.rpc.url), max_size=16 << 20, open_timeout=5) as ws:
                    ws.send(
                        json.dumps(
                            {"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"query": SUBSCRIPTION}}
                        )
                    )
                    self.refresh()  # catch up on whatever happened while unsubscribed
                    backoff = 0.2
                    while not self._stop.is_set():
                        try:
                            message = json.loads(ws.recv(timeout=1.0))
                        except TimeoutError:
                            continue
                        height = _event_height(message)
                        if height is not None:
                            self.refresh(height)
            except (OSError, WebSocketException, NodeUnavailable, RPCError, ValueError) as err:
                if self._stop.is_set():
                    return
                log.warning(
                    "event subscription to %s lost (%s); retrying in %.1fs",
                    self.rpc.url,
                    " ".join(str(err).split()) or type(err).__name__,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def refresh(self, height: int | None = None) -> None:
        """Read the current round; publish a snapshot if its id or phase moved."""
        with self._refreshing:
            self._refresh(height)

    def _refresh(self, height: int | None) -> None:
        answer = self.rpc.abci_query(qp.path(qp.ROUND))
        if answer.code:
            return  # no committed state yet
        current = types_pb2.Round.FromString(answer.value)
        previous = self.latest()
        if previous and (previous.round.id, previous.round.phase) == (current.id, current.phase):
            return
        finished = None
        if previous and previous.round.id != current.id:
            done = self.rpc.abci_query(qp.path(qp.ROUND, current.id - 1))
            finished = types_pb2.Round.FromString(done.value) if done.code == 0 else None
        height = height if height is not None else answer.height
        with self._changed:
            version = self._latest.version + 1 if self._latest else 1
            self._latest = snapshot = Snapshot(version, height, current, finished)
            self._changed.notify_all()
        for listener in self._listeners:
            listener(snapshot)
        log.info("height %d: round %d %s", height, current.id, types_pb2.Phase.Name(current.phase))


def _event_height(message: dict) -> int | None:
    """Height of a NewBlockEvents notification; None for the subscription's acknowledgement."""
    if message.get("error"):
        raise ValueError(f"subscription refused: {message['error']}")
    value = ((message.get("result") or {}).get("data") or {}).get("value") or {}
    return int(value["height"]) if "height" in value else None
