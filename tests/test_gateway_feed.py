"""The gateway's round feed, without a node: event parsing and snapshot publication."""

import threading

import pytest

from client.rpc import QueryResult
from flchain.v1 import types_pb2
from gateway.feed import RoundFeed, _event_height, websocket_url


class FakeRPC:
    """Answers /round and /round/<id> from a dict, as a node's ABCI queries would."""

    url = "http://127.0.0.1:1"

    def __init__(self):
        self.rounds: dict[int, types_pb2.Round] = {}
        self.current = 0

    def abci_query(self, path: str) -> QueryResult:
        round_id = self.current if path == "/round" else int(path.rsplit("/", 1)[1])
        rnd = self.rounds.get(round_id)
        if rnd is None:
            return QueryResult(code=51, log="not found", value=b"", height=0)
        return QueryResult(code=0, log="", value=rnd.SerializeToString(), height=7)


def test_event_height_reads_new_block_events():
    event = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "query": "tm.event='NewBlockEvents'",
            "data": {
                "type": "tendermint/event/NewBlockEvents",
                "value": {"height": "42", "events": [], "num_txs": "0"},
            },
        },
    }
    assert _event_height(event) == 42
    assert _event_height({"jsonrpc": "2.0", "id": 1, "result": {}}) is None  # the subscription's ack
    with pytest.raises(ValueError, match="subscription refused"):
        _event_height({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "max subscriptions"}})
    assert websocket_url("http://127.0.0.1:26657") == "ws://127.0.0.1:26657/websocket"


def test_snapshots_on_phase_and_round_changes_only():
    rpc = FakeRPC()
    feed = RoundFeed(rpc)
    feed.refresh()
    assert feed.latest() is None  # no committed state yet
    rpc.rounds[1] = types_pb2.Round(id=1, phase=types_pb2.PHASE_SELECT)
    rpc.current = 1
    feed.refresh(3)
    first = feed.latest()
    assert (first.version, first.height, first.round.id, first.finished) == (1, 3, 1, None)
    feed.refresh(4)
    assert feed.latest() is first  # same id and phase: nothing new
    rpc.rounds[1] = types_pb2.Round(id=1, phase=types_pb2.PHASE_TALLY, outcome=types_pb2.OUTCOME_ACCEPTED)
    rpc.rounds[2] = types_pb2.Round(id=2, phase=types_pb2.PHASE_SELECT)
    rpc.current = 2
    got = []
    waiter = threading.Thread(target=lambda: got.append(feed.wait(first.version, timeout=5)))
    waiter.start()
    feed.refresh(9)
    waiter.join()
    assert got[0].version == 2 and got[0].round.id == 2
    assert got[0].finished.outcome == types_pb2.OUTCOME_ACCEPTED
    assert feed.wait(2, timeout=0.05) is None
