"""Stateless and account checks: every bad tx gets its own code, a clear log, and changes nothing."""

import numpy as np
import pytest
from chain import CHAIN_ID, Chain, make_params

from abci_app.codes import Code
from client import tx as txb
from client.keys import Key
from flchain.v1 import tx_pb2


@pytest.fixture
def chain() -> Chain:
    c = Chain(params=make_params(min_participants=100))  # no round draws: blocks change nothing by themselves
    c.block()
    return c


def snapshot(chain: Chain) -> dict:
    s = chain.state()
    return {
        "accounts": [s.account(k.address) for k in chain.keys],
        "participants": list(s.participants()),
        "round": s.round(),
    }


def assert_rejected(chain: Chain, raw: bytes, code: Code, text: str) -> None:
    before = snapshot(chain)
    checked = chain.machine.check_tx(raw)
    assert checked.code == code and text in checked.log
    outcome = chain.block(raw)
    assert outcome.tx_results[0].code == code
    assert snapshot(chain)["accounts"] == before["accounts"]
    assert snapshot(chain)["participants"] == before["participants"]


def test_valid_tx_passes_check_and_bumps_nonce(chain):
    key = chain.keys[-1]
    raw = chain.tx(key, txb.bond(1_500))
    assert chain.machine.check_tx(raw).code == Code.OK
    assert chain.block(raw).tx_results[0].code == Code.OK
    assert chain.state().account(key.address).nonce == 1


def test_wrong_signature(chain):
    tx = tx_pb2.Tx.FromString(chain.tx(chain.keys[0], txb.bond(10)))
    tx.signature = bytes(64)
    assert_rejected(chain, tx.SerializeToString(), Code.BAD_SIGNATURE, "signature does not verify")


def test_signature_from_another_key(chain):
    tx = tx_pb2.Tx.FromString(chain.tx(chain.keys[0], txb.bond(10)))
    tx.public_key = chain.keys[1].public_key
    assert_rejected(chain, tx.SerializeToString(), Code.BAD_SIGNATURE, "signature")


def test_bad_public_key(chain):
    tx = tx_pb2.Tx.FromString(chain.tx(chain.keys[0], txb.bond(10)))
    tx.public_key = b"short"
    assert_rejected(chain, tx.SerializeToString(), Code.BAD_PUBLIC_KEY, "32 bytes")


def test_wrong_chain_id(chain):
    raw = txb.sign_tx(chain.keys[0], "other-chain", 0, [txb.bond(10)])
    assert_rejected(chain, raw, Code.WRONG_CHAIN_ID, "'other-chain'")


def test_replayed_tx_is_refused(chain):
    key = chain.keys[-1]
    raw = chain.tx(key, txb.bond(1_500))
    chain.block(raw)
    assert_rejected(chain, raw, Code.BAD_NONCE, "nonce 0 does not match the account's next nonce 1")


def test_future_nonce_is_refused(chain):
    assert_rejected(chain, chain.tx(chain.keys[0], txb.bond(10), nonce=5), Code.BAD_NONCE, "nonce 5")


def test_unknown_account(chain):
    stranger = Key.generate("stranger")
    assert_rejected(chain, txb.sign_tx(stranger, CHAIN_ID, 0, [txb.bond(10)]), Code.UNKNOWN_ACCOUNT, "no account")


def test_oversized_tx(chain):
    limit = chain.state().params().max_tx_bytes
    raw = txb.sign_tx(chain.keys[0], CHAIN_ID, 0, [txb.bond(10)], memo="x" * limit)
    assert_rejected(chain, raw, Code.TX_TOO_LARGE, f"the limit is {limit}")


@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x05abc"])
def test_undecodable_bytes(chain, raw):
    assert_rejected(chain, raw, Code.TX_UNDECODABLE, "not a protobuf")


def test_tx_without_messages(chain):
    assert_rejected(chain, txb.sign_tx(chain.keys[0], CHAIN_ID, 0, []), Code.NO_MESSAGES, "no messages")


def test_empty_message(chain):
    assert_rejected(chain, txb.sign_tx(chain.keys[0], CHAIN_ID, 0, [tx_pb2.Msg()]), Code.TX_UNDECODABLE, "empty")


def test_mempool_accepts_consecutive_nonces_and_refuses_a_duplicate(chain):
    key = chain.keys[-1]
    first, second = chain.tx(key, txb.bond(1_500)), chain.tx(key, txb.bond(100))
    assert chain.machine.check_tx(first).code == Code.OK
    assert chain.machine.check_tx(second).code == Code.OK
    assert chain.machine.check_tx(first).code == Code.BAD_NONCE
    chain.block(first, second)
    assert chain.state().participant(key.address).stake == 1_600
    assert chain.machine.check_tx(second).code == Code.BAD_NONCE  # check state was reset at commit


def test_failed_message_consumes_nonce_in_block_but_not_in_mempool(chain):
    key = chain.keys[-1]
    bad = chain.tx(key, txb.bond(10))  # below threshold
    assert chain.machine.check_tx(bad).code == Code.BOND_BELOW_THRESHOLD
    assert chain.machine.check_tx(chain.tx(key, txb.bond(1_500), nonce=0)).code == Code.OK
    chain.block(bad)
    assert chain.last.tx_results[0].code == Code.BOND_BELOW_THRESHOLD
    assert chain.state().account(key.address).nonce == 1
    assert chain.state().participant(key.address) is None


def test_multi_message_tx_is_all_or_nothing(chain):
    key = chain.keys[-1]
    raw = chain.tx(key, txb.bond(1_500), txb.bond(10**9))
    assert chain.block(raw).tx_results[0].code == Code.INSUFFICIENT_BALANCE
    assert chain.state().participant(key.address) is None
    assert chain.state().account(key.address).balance == 10_000


def test_process_proposal_checks(chain):
    good = chain.tx(chain.keys[0], txb.bond(10))
    assert chain.machine.verify_stateless(good).code == Code.OK
    assert chain.machine.verify_stateless(b"junk").code == Code.TX_UNDECODABLE


# --- stateless checks (ValidateBasic) and one signature check per path ------------------------------


SALT = b"s" * 32


@pytest.mark.parametrize(
    "message, code",
    [
        (txb.bond(0), Code.INVALID_AMOUNT),
        (txb.unbond(0), Code.INVALID_AMOUNT),
        (txb.submit_update(1, [("fc.bias", np.full(4, np.nan, np.float32))], 10, SALT), Code.NON_FINITE),
        (txb.submit_update(1, [("fc.bias", np.ones(4, np.float32))], 0, SALT), Code.BAD_NUM_SAMPLES),
        (txb.submit_update(1, [("fc.bias", np.ones(4, np.float32))], 10, b"short"), Code.BAD_SALT),
        (txb.vote(1, 10_000, [1], b"", start_loss=10_000), Code.BAD_SALT),
        (txb.commit_update(1, b"\x00" * 31), Code.BAD_COMMITMENT),
        (txb.commit_ballot(1, b""), Code.BAD_COMMITMENT),
    ],
)
def test_a_message_failing_its_stateless_check_makes_the_proposal_invalid(chain, message, code):
    raw = chain.tx(chain.keys[0], txb.bond(1), message)
    checked = chain.machine.verify_stateless(raw)
    assert checked.code == code and "message 1:" in checked.log
    assert chain.machine.check_tx(raw).code == code
    assert chain.state().account(chain.keys[0].address).nonce == 0  # never got as far as the nonce


def test_finalize_block_reuses_the_proposal_checks(chain, monkeypatch):
    from abci_app import machine

    calls = []
    real = machine.verify_tx
    monkeypatch.setattr(machine, "verify_tx", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    raw = chain.tx(chain.keys[-1], txb.bond(1_500))
    assert chain.machine.verify_stateless(raw).code == Code.OK  # ProcessProposal
    assert chain.block(raw).tx_results[0].code == Code.OK  # FinalizeBlock
    assert calls == [raw]
    calls.clear()
    assert chain.machine.check_tx(chain.tx(chain.keys[-1], txb.bond(10))).code == Code.OK
    assert len(calls) == 1  # CheckTx verifies on its own path


def test_a_recheck_skips_only_the_signature(chain):
    key = chain.keys[-1]
    tx = tx_pb2.Tx.FromString(chain.tx(key, txb.bond(1_500)))
    tx.signature = bytes(64)
    forged = tx.SerializeToString()
    assert chain.machine.check_tx(forged).code == Code.BAD_SIGNATURE
    assert chain.machine.check_tx(forged, recheck=True).code == Code.OK  # only ever rechecked after passing
    stale = chain.tx(key, txb.bond(1_500), nonce=7)
    assert chain.machine.check_tx(stale, recheck=True).code == Code.BAD_NONCE


def test_the_in_process_client_reads_its_next_nonce_back_after_every_block(chain):
    key = chain.keys[-1]
    # refused by the stateless check (a ballot's loss of 0): the nonce is not spent
    malformed = chain.tx(key, txb.vote(1, 0, [1], bytes(32), start_loss=10_000))
    assert chain.block(malformed).tx_results[0].code == Code.BAD_BALLOT
    assert chain.state().account(key.address).nonce == 0
    accepted = chain.tx(key, txb.bond(1_500))  # signed after it: nonce 0 again, not 1
    assert chain.block(accepted).tx_results[0].code == Code.OK
    # refused by its handler (more than the balance): the nonce is spent, as in the Cosmos SDK
    assert chain.block(chain.tx(key, txb.bond(10**9))).tx_results[0].code == Code.INSUFFICIENT_BALANCE
    assert chain.state().account(key.address).nonce == 2
    assert chain.block(chain.tx(key, txb.bond(100))).tx_results[0].code == Code.OK


def test_a_ballot_loss_the_model_already_fits_is_reported_as_the_smallest_accepted():
    from abci_app.messages import MAX_LOSS

    assert [txb.loss_units(x) for x in (0.0, 3e-5, 0.5e-4 + 1e-9, 0.25, 1e9)] == [1, 1, 1, 2_500, MAX_LOSS]
    assert txb.evidence_units(0.0) == 0  # a score (a loss difference) may be zero; a loss may not
