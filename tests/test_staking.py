"""Bonding, unbonding and the unbonding queue."""

import pytest
from chain import Chain, make_params

from abci_app.codes import Code
from client import tx as txb
from flchain.v1 import types_pb2


@pytest.fixture
def chain() -> Chain:
    c = Chain(participants=3, extra_accounts=2, params=make_params(min_participants=100))  # no rounds
    c.block()
    return c


def test_genesis_participants_are_bonded(chain):
    for key in chain.keys[:3]:
        p = chain.state().participant(key.address)
        assert p.stake == 2_000 and p.status == types_pb2.PARTICIPANT_STATUS_BONDED
    assert chain.state().participant(chain.keys[3].address) is None


def test_bond_new_participant(chain):
    key = chain.keys[3]
    out = chain.block(chain.tx(key, txb.bond(1_200)))
    assert out.tx_results[0].code == Code.OK
    assert chain.state().account(key.address).balance == 10_000 - 1_200
    p = chain.state().participant(key.address)
    assert (p.stake, p.status, p.bonded_height) == (1_200, types_pb2.PARTICIPANT_STATUS_BONDED, 2)
    assert [e.type for e in out.tx_results[0].events] == ["message", "bonded"]


def test_bond_below_threshold(chain):
    out = chain.block(chain.tx(chain.keys[3], txb.bond(999)))
    assert out.tx_results[0].code == Code.BOND_BELOW_THRESHOLD
    assert "at least 1000" in out.tx_results[0].log


def test_top_up_may_be_small(chain):
    key = chain.keys[0]
    assert chain.block(chain.tx(key, txb.bond(1))).tx_results[0].code == Code.OK
    assert chain.state().participant(key.address).stake == 2_001


@pytest.mark.parametrize("amount, code", [(0, Code.INVALID_AMOUNT), (10_001, Code.INSUFFICIENT_BALANCE)])
def test_bad_bond_amounts(chain, amount, code):
    assert chain.block(chain.tx(chain.keys[3], txb.bond(amount))).tx_results[0].code == code


def test_partial_unbond_returns_after_unbonding_period(chain):
    key = chain.keys[0]
    out = chain.block(chain.tx(key, txb.unbond(500)))
    unbond_height = chain.height
    assert out.tx_results[0].code == Code.OK
    assert chain.state().participant(key.address).stake == 1_500
    info = chain.query(f"/participant/{key.bech32}")
    assert info.code == 0
    while chain.height < unbond_height + chain.params.unbonding_blocks - 1:
        chain.block()
        assert chain.state().account(key.address).balance == 10_000
    chain.block()
    assert chain.state().account(key.address).balance == 10_500
    assert any(e.type == "unbonding_completed" for e in chain.last.events)


def test_full_unbond_removes(chain):
    key = chain.keys[0]
    chain.block(chain.tx(key, txb.unbond(2_000)))
    p = chain.state().participant(key.address)
    assert (p.stake, p.status) == (0, types_pb2.PARTICIPANT_STATUS_REMOVED)


def test_unbond_leaving_too_little(chain):
    out = chain.block(chain.tx(chain.keys[0], txb.unbond(1_500)))
    assert out.tx_results[0].code == Code.UNBOND_LEAVES_TOO_LITTLE
    assert chain.state().participant(chain.keys[0].address).stake == 2_000


def test_unbond_more_than_stake_or_when_not_bonded(chain):
    assert chain.block(chain.tx(chain.keys[0], txb.unbond(2_001))).tx_results[0].code == Code.INVALID_AMOUNT
    assert chain.block(chain.tx(chain.keys[3], txb.unbond(1))).tx_results[0].code == Code.NOT_BONDED


def test_unbond_is_locked_while_serving_in_a_round():
    chain = Chain(participants=3)
    rnd = chain.start_round()
    serving = chain.key(rnd.proposers[0])
    out = chain.block(chain.tx(serving, txb.unbond(2_000)))
    assert out.tx_results[0].code == Code.ROLE_LOCKED
    assert f"round {rnd.id}" in out.tx_results[0].log


def test_removed_participant_can_bond_again(chain):
    key = chain.keys[0]
    chain.block(chain.tx(key, txb.unbond(2_000)))
    assert chain.block(chain.tx(key, txb.bond(500))).tx_results[0].code == Code.BOND_BELOW_THRESHOLD
    assert chain.block(chain.tx(key, txb.bond(1_000))).tx_results[0].code == Code.OK
    assert chain.state().participant(key.address).status == types_pb2.PARTICIPANT_STATUS_BONDED
