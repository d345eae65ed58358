"""ABCI query paths answer protobuf messages, or a code and a reason."""

from chain import Chain

from abci_app.codes import Code
from abci_app.machine import StateMachine
from abci_app.queries import answer
from abci_app.store import MemoryStore
from flchain.v1 import query_pb2, types_pb2


def test_every_path():
    chain = Chain()
    rnd = chain.start_round()
    key = chain.key(rnd.proposers[0])
    sealed = chain.sealed_update(rnd, key.address, chain.honest_update(), 7)
    chain.block(chain.tx(key, sealed.commit))
    chain.blocks_until(lambda s: s.round().phase == types_pb2.PHASE_REVEAL_UPDATES)  # its partner stays silent
    assert chain.query("/candidate").code == Code.NOT_FOUND and chain.query("/updates").code == Code.NOT_FOUND
    chain.block(chain.tx(key, sealed.reveal))  # the only commitment revealed: VOTE begins

    params = types_pb2.Params.FromString(chain.query("/params").value)
    assert params == chain.params
    current = types_pb2.Round.FromString(chain.query("/round").value)
    assert current.id == rnd.id and list(current.submitted) == [key.address]
    assert types_pb2.Round.FromString(chain.query(f"/round/{rnd.id}").value) == current
    assert chain.query("/round/99").code == Code.NOT_FOUND

    info = query_pb2.ParticipantInfo.FromString(chain.query(f"/participant/{key.bech32}").value)
    assert info.participant.stake == 2_000 and info.participant.rounds_proposed == info.participant.proposer_turns == 1
    assert [e.kind for e in info.history] == ["bonded"]
    listing = query_pb2.ParticipantList.FromString(chain.query("/participants").value)
    assert len(listing.participants) == 6

    account = types_pb2.Account.FromString(chain.query(f"/account/{key.bech32}").value)
    assert account.nonce == 2 and account.balance == 10_000
    model = types_pb2.GlobalModel.FromString(chain.query("/model").value)
    assert model.version == 0 and [t.name for t in model.tensors] == ["fc.weight", "fc.bias"]
    assert current.phase == types_pb2.PHASE_VOTE
    candidate = types_pb2.Candidate.FromString(chain.query("/candidate").value)
    assert candidate.total_samples == 7 and list(candidate.contributors) == [key.address]


def test_bad_queries():
    chain = Chain()
    chain.block()
    assert chain.query("/nope").code == Code.UNKNOWN_PATH
    bad = chain.query("/account/cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq")
    assert bad.code == Code.BAD_ADDRESS and "bech32" in bad.log
    assert chain.query(f"/participant/{chain.keys[-1].bech32}").code == Code.NOT_FOUND


def test_query_before_first_commit():
    assert answer(StateMachine(MemoryStore()).committed_state(), "/params").code == Code.NOT_FOUND
