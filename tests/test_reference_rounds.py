"""Rounds of a model by reference: updates and the global model are files in an object store, the
chain holds their digests, and the voters report the new model's digest (PHASE_AGGREGATE)."""

import hashlib

import numpy as np
import pytest

from abci_app import aggregation, copies, genesis, norm_bound, tensors, wire
from abci_app.address import to_bech32
from abci_app.codes import Code
from abci_app.messages import UNUSABLE_SCORE
from client import artifacts, blobs
from client import tx as txb
from flchain.v1 import types_pb2
from node import genesis as node_genesis
from tests.chain import MODEL_SHAPES, Chain, KeptFiles, initial_model, make_params

P = types_pb2
LOSS, GOOD, BAD = 10_000, 1_000, -5_000
NORM = 300  # an included update's norm, as aggregators report it
HEADER = 96  # bytes of a safetensors header, beside the tensors' own


def ref(seed: bytes, dtype=P.DTYPE_FIXED32, shapes=MODEL_SHAPES, size: int | None = None) -> P.BlobRef:
    data = sum(4 * int(np.prod(shape)) for _, shape in shapes)
    return P.BlobRef(
        digest=hashlib.sha256(seed).digest(),
        size=data + HEADER if size is None else size,
        manifest=[P.TensorSpec(name=n, shape=s, dtype=dtype) for n, s in shapes],
    )


GENESIS_MODEL = ref(b"genesis model")
MODEL_VALUES = sum(int(np.prod(shape)) for _, shape in MODEL_SHAPES)


def fingerprint(seed: bytes) -> list[int]:
    """A made-up fingerprint for a made-up file: the chain only checks its form (voters check the rest)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed).digest()[:8], "big"))
    return rng.integers(-1_000, 1_000, MODEL_VALUES).tolist()


def by_reference(**overrides) -> Chain:
    """A chain whose 64-byte model is above its inline limit: it is federated by reference."""
    params = make_params(max_inline_model_bytes=32, aggregate_timeout_ms=5_000, **overrides)  # five blocks
    return Chain(participants=8, params=params, model_ref=GENESIS_MODEL)


def stakes(chain: Chain) -> dict[bytes, int]:
    return {p.address: p.stake for p in chain.state().participants()}


def propose_refs(chain: Chain, rnd, fingerprints: dict[bytes, list[int]] | None = None) -> dict[bytes, P.BlobRef]:
    """Each proposer commits to, then reveals, a reference to its update's file, and its fingerprint."""
    refs = {a: ref(b"update" + a + bytes([rnd.id]), dtype=P.DTYPE_FLOAT32) for a in rnd.proposers}
    prints = {a: fingerprint(r.digest) for a, r in refs.items()} | (fingerprints or {})
    sealed = {a: txb.sealed_reference(a, rnd.id, r, prints[a], 100, chain.salt(a, rnd.id)) for a, r in refs.items()}
    chain.commit(sealed, P.PHASE_REVEAL_UPDATES)
    out = chain.reveal(sealed)
    assert [r.code for r in out.tx_results] == [Code.OK] * len(sealed), [r.log for r in out.tx_results]
    chain.blocks_until(lambda s: s.round().phase == P.PHASE_VOTE)
    return refs


def vote(chain: Chain, rnd, evidence) -> None:
    out = chain.cast(rnd, {a: (LOSS, scores) for a, scores in zip(rnd.voters, evidence)})
    assert [r.code for r in out.tx_results] == [Code.OK] * len(evidence)


def included_norms(chain: Chain, norm: int = NORM) -> list[int]:
    """One norm per update the current round included: what an aggregate report must carry."""
    return [norm] * sum(v.included for v in chain.round().verdicts)


def report(chain: Chain, sender: bytes, round_id: int, digest: bytes, size: int = 200, norms=None):
    msg = txb.report_aggregate(round_id, digest, size, included_norms(chain) if norms is None else norms)
    return chain.block(chain.tx(chain.key(sender), msg)).tx_results[0]


def check_report(chain: Chain, sender: bytes, round_id: int, digest: bytes, norms=None):
    """CheckTx alone: a refused report costs no block (and no nonce)."""
    nonce = chain.state().must_account(sender).nonce
    msg = txb.report_aggregate(round_id, digest, 200, included_norms(chain) if norms is None else norms)
    return chain.machine.check_tx(chain.tx(chain.key(sender), msg, nonce=nonce))


# --- genesis ---------------------------------------------------------------------------------


def test_genesis_says_which_way_a_model_goes():
    accounts = {b"\x01" * 20: 10}
    with pytest.raises(ValueError, match="above max_inline_model_bytes"):
        genesis.validate(genesis.build(accounts, {}, initial_model(), make_params(max_inline_model_bytes=32)))
    with pytest.raises(ValueError, match="given inline"):
        genesis.validate(genesis.build(accounts, {}, GENESIS_MODEL, make_params()))
    with pytest.raises(ValueError, match="DTYPE_FIXED32"):
        genesis.validate(
            genesis.build(accounts, {}, ref(b"m", dtype=P.DTYPE_FLOAT32), make_params(max_inline_model_bytes=32))
        )
    with pytest.raises(ValueError, match="digest is a 32-byte"):
        bad = P.BlobRef(digest=b"short", size=200, manifest=GENESIS_MODEL.manifest)
        genesis.validate(genesis.build(accounts, {}, bad, make_params(max_inline_model_bytes=32)))
    both = genesis.build(accounts, {}, initial_model(), make_params(max_inline_model_bytes=32))
    both.model_ref.CopyFrom(GENESIS_MODEL)
    with pytest.raises(ValueError, match="not both"):
        genesis.validate(both)


def test_an_operator_sets_a_large_genesis_model_by_reference():
    doc = {"chain_id": "fed-1", "app_state": node_genesis.empty_app_state(make_params(max_inline_model_bytes=32))}
    with pytest.raises(ValueError, match="through an object store"):
        node_genesis.set_model(doc, initial_model())
    store = KeptFiles()
    state = node_genesis.app_state(node_genesis.set_model(doc, initial_model(), store))
    assert not state.model and set(store.files) == {state.model_ref.digest}
    stored = blobs.decode(store.files[state.model_ref.digest], state.model_ref)
    expected = [wire.decode_tensor(wire.encode_float(n, v), 16) for n, v in initial_model()]
    assert all((tensors.read(t) == e).all() and t.dtype == P.DTYPE_FIXED32 for t, e in zip(stored, expected))
    state.participants.add(address=b"\x01" * 20, stake=5_000)
    genesis.validate(state)  # a chain starts from it


def test_the_chain_holds_references_and_never_a_candidate():
    chain = by_reference()
    rnd = chain.start_round()
    assert chain.state().model() == P.GlobalModel(version=0, round=0, ref=GENESIS_MODEL)
    refs = propose_refs(chain, rnd)
    updates = [chain.state().must_update(rnd.id, a) for a in rnd.submitted]
    assert [(u.ref, list(u.tensors)) for u in updates] == [(refs[a], []) for a in rnd.submitted]
    assert chain.state().candidate() is None  # each voter forms the FedAvg from the files itself


@pytest.mark.parametrize(
    ("mutate", "code", "log"),
    [
        (lambda r: setattr(r, "digest", b"\x00" * 31), Code.BAD_REFERENCE, "32-byte sha256"),
        (lambda r: setattr(r, "size", 64), Code.BAD_REFERENCE, "cannot hold"),
        (lambda r: setattr(r, "size", 64 + (1 << 20) + 1), Code.BAD_REFERENCE, "cannot hold"),
        (lambda r: r.manifest[0].shape.__setitem__(0, 3), Code.BAD_SHAPE, "do not match the model"),
        (lambda r: setattr(r.manifest[1], "name", r.manifest[0].name), Code.BAD_REFERENCE, "repeats"),
        (lambda r: setattr(r.manifest[0], "dtype", P.DTYPE_UNSPECIFIED), Code.BAD_REFERENCE, "FLOAT32"),
        (lambda r: r.ClearField("manifest"), Code.BAD_REFERENCE, "empty"),
    ],
)
def test_a_malformed_reference_is_refused_with_its_code(mutate, code, log):
    chain = by_reference()
    rnd = chain.start_round()
    proposer = rnd.proposers[0]
    bad = ref(b"update", dtype=P.DTYPE_FLOAT32)
    mutate(bad)
    sealed = txb.sealed_reference(proposer, rnd.id, bad, fingerprint(b"u"), 100, chain.salt(proposer, rnd.id))
    chain.block(chain.tx(chain.key(proposer), sealed.commit))
    chain.blocks_until(lambda s: s.round().phase == P.PHASE_REVEAL_UPDATES)
    result = chain.machine.check_tx(chain.tx(chain.key(proposer), sealed.reveal))
    assert result.code == code and log in result.log, result.log


@pytest.mark.parametrize(
    ("values", "log"),
    [
        ([], "carries its fingerprint"),
        ([1] * (MODEL_VALUES - 1), f"fingerprints of {MODEL_VALUES} values, got {MODEL_VALUES - 1}"),
        ([1] * (MODEL_VALUES + 1), f"fingerprints of {MODEL_VALUES} values, got {MODEL_VALUES + 1}"),
        ([1] * (copies.SIZE + 1), f"at most {copies.SIZE} values"),
        ([(1 << copies.VALUE_BITS) + 1] + [1] * (MODEL_VALUES - 1), "within +-2^24"),
    ],
)
def test_an_update_by_reference_without_a_fingerprint_of_the_models_form_is_refused(values, log):
    chain = by_reference()
    rnd = chain.start_round()
    proposer = rnd.proposers[0]
    sealed = txb.sealed_reference(
        proposer, rnd.id, ref(b"u", P.DTYPE_FLOAT32), values, 100, chain.salt(proposer, rnd.id)
    )
    chain.block(chain.tx(chain.key(proposer), sealed.commit))
    chain.blocks_until(lambda s: s.round().phase == P.PHASE_REVEAL_UPDATES)
    nonce = chain.state().must_account(proposer).nonce
    result = chain.machine.check_tx(chain.tx(chain.key(proposer), sealed.reveal, nonce=nonce))
    assert result.code == Code.BAD_FINGERPRINT and log in result.log, result.log
    # the greatest magnitude is allowed (a sketch's arithmetic shift can reach it), and the
    # commitment binds the file, not the fingerprint: the voters check that one
    edge = [-(1 << copies.VALUE_BITS)] + [1] * (MODEL_VALUES - 1)
    sealed = txb.sealed_reference(proposer, rnd.id, ref(b"u", P.DTYPE_FLOAT32), edge, 100, chain.salt(proposer, rnd.id))
    assert chain.machine.check_tx(chain.tx(chain.key(proposer), sealed.reveal, nonce=nonce)).code == Code.OK


def test_an_inline_update_carries_no_fingerprint():
    chain = Chain()
    rnd = chain.start_round()
    proposer = rnd.proposers[0]
    sealed = chain.sealed_update(rnd, proposer, chain.honest_update(), 10)
    sealed.reveal.submit_update.fingerprint.extend([1] * MODEL_VALUES)
    chain.block(chain.tx(chain.key(proposer), sealed.commit))
    chain.blocks_until(lambda s: s.round().phase == P.PHASE_REVEAL_UPDATES)
    result = chain.machine.check_tx(chain.tx(chain.key(proposer), sealed.reveal))
    assert result.code == Code.BAD_FINGERPRINT and "the chain computes it" in result.log


def test_an_inline_update_is_refused_by_a_chain_of_references_and_back():
    chain = by_reference()
    rnd = chain.start_round()
    proposer = rnd.proposers[0]
    sealed = chain.sealed_update(rnd, proposer, chain.honest_update(), 10)
    chain.block(chain.tx(chain.key(proposer), sealed.commit))
    chain.blocks_until(lambda s: s.round().phase == P.PHASE_REVEAL_UPDATES)
    result = chain.machine.check_tx(chain.tx(chain.key(proposer), sealed.reveal))
    assert result.code == Code.BAD_REFERENCE and "federated by reference" in result.log

    inline = Chain()
    rnd = inline.start_round()
    proposer = rnd.proposers[0]
    sealed = txb.sealed_reference(proposer, rnd.id, ref(b"u"), fingerprint(b"u"), 10, inline.salt(proposer, rnd.id))
    inline.block(inline.tx(inline.key(proposer), sealed.commit))
    inline.blocks_until(lambda s: s.round().phase == P.PHASE_REVEAL_UPDATES)
    result = inline.machine.check_tx(inline.tx(inline.key(proposer), sealed.reveal))
    assert result.code == Code.BAD_REFERENCE and "inline" in result.log


def test_the_majority_digest_becomes_the_model_and_a_lying_aggregator_is_slashed():
    chain = by_reference()
    rnd = chain.start_round()
    propose_refs(chain, rnd)
    unusable, good = chain.round().submitted
    before = stakes(chain)
    # every voter found the first file unusable (missing, or not what was referenced)
    vote(chain, rnd, [[UNUSABLE_SCORE, GOOD]] * len(rnd.voters))
    rnd = chain.round()
    assert rnd.phase == P.PHASE_AGGREGATE
    assert [(v.proposer, v.included, v.condemned) for v in rnd.verdicts] == [
        (unusable, False, True),
        (good, True, False),
    ]
    assert chain.events("aggregation_started")[0]["included"] == to_bech32(good)

    honest, liar, silent = rnd.voters
    new_model = hashlib.sha256(b"model + FedAvg of the included update").digest()
    outsider = rnd.proposers[0]
    refused = [(outsider, rnd.id), (honest, rnd.id + 1)]
    assert [check_report(chain, s, r, new_model).code for s, r in refused] == [Code.NOT_AGGREGATOR, Code.WRONG_ROUND]
    assert report(chain, honest, rnd.id, new_model).code == Code.OK
    assert check_report(chain, honest, rnd.id, new_model).code == Code.ALREADY_REPORTED
    assert report(chain, liar, rnd.id, hashlib.sha256(b"a lie").digest()).code == Code.OK
    # two of three equal stakes have not agreed yet: the phase waits for the last one or its deadline
    assert chain.round().phase == P.PHASE_AGGREGATE
    chain.blocks_until(lambda s: s.round().id != rnd.id)
    assert chain.state().round_by_id(rnd.id).outcome == P.OUTCOME_NOT_AGGREGATED  # 1 of 3: no majority
    assert chain.state().model().version == 0
    # nobody can be told apart without a majority: no aggregator is slashed for it
    state = chain.state()
    for voter in rnd.voters:
        history = state.history(voter, state.must_participant(voter))
        assert not {e.reason for e in history} & {"aggregate_mismatch", "liveness_aggregator"}
    assert stakes(chain)[unusable] == before[unusable] * (10_000 - chain.params.proposer_slash_bps) // 10_000


def test_a_majority_of_the_aggregators_and_their_stake_adopts_the_digest():
    chain = by_reference()
    rnd = chain.start_round()
    propose_refs(chain, rnd)
    vote(chain, rnd, [[GOOD, GOOD]] * len(rnd.voters))
    first, second, liar = chain.round().voters
    before = stakes(chain)
    new_model = hashlib.sha256(b"model + FedAvg").digest()
    for sender, digest in [(first, new_model), (second, new_model), (liar, hashlib.sha256(b"lie").digest())]:
        assert report(chain, sender, rnd.id, digest, size=160).code == Code.OK
    finished = chain.state().round_by_id(rnd.id)
    assert (finished.phase, finished.outcome) == (P.PHASE_TALLY, P.OUTCOME_ACCEPTED)
    model = chain.state().model()
    assert (model.version, model.round, model.ref.digest, model.ref.size) == (1, rnd.id, new_model, 160)
    assert list(model.ref.manifest) == list(GENESIS_MODEL.manifest)
    assert model.previous == GENESIS_MODEL  # the step (server momentum) is the new file minus this one
    after = stakes(chain)
    assert after[liar] == before[liar] * (10_000 - chain.params.aggregator_slash_bps) // 10_000
    assert after[first] == before[first] and after[second] == before[second]
    assert [e["reason"] for e in chain.events("slashed")] == ["aggregate_mismatch"]
    assert chain.events("aggregate_adopted")[0]["digest"] == new_model.hex()
    assert chain.round().model_version == 1


def test_a_richer_aggregator_alone_does_not_decide_a_committee_of_two():
    """Of two aggregators, the one with most of the stake is still one of two: its lie is not the
    model (nobody could fetch it), and the honest one is not slashed for the truth."""
    chain = by_reference(num_voters=2)
    rnd = chain.start_round()
    propose_refs(chain, rnd)
    vote(chain, rnd, [[GOOD, GOOD]] * len(rnd.voters))
    honest, liar = chain.round().voters
    assert chain.block(chain.tx(chain.key(liar), txb.bond(1_000))).tx_results[0].code == Code.OK
    before = stakes(chain)
    assert 2 * before[liar] > before[liar] + before[honest]
    assert report(chain, liar, rnd.id, hashlib.sha256(b"a lie").digest()).code == Code.OK
    assert report(chain, honest, rnd.id, hashlib.sha256(b"model + FedAvg").digest()).code == Code.OK
    assert chain.state().round_by_id(rnd.id).outcome == P.OUTCOME_NOT_AGGREGATED
    assert chain.state().model().version == 0 and stakes(chain) == before
    assert chain.events("slashed") == []


def test_a_silent_aggregator_is_slashed_when_the_others_could_aggregate():
    chain = by_reference()
    rnd = chain.start_round()
    propose_refs(chain, rnd)
    vote(chain, rnd, [[GOOD, GOOD]] * len(rnd.voters))
    first, second, silent = chain.round().voters
    before = stakes(chain)
    digest = hashlib.sha256(b"model").digest()
    report(chain, first, rnd.id, digest)
    report(chain, second, rnd.id, digest)
    chain.blocks_until(lambda s: s.round().id != rnd.id)  # the deadline
    assert chain.state().model().ref.digest == digest
    assert stakes(chain)[silent] == before[silent] * (10_000 - chain.params.liveness_slash_bps) // 10_000


def test_a_store_down_for_everyone_slashes_nobody_for_silence():
    """Nobody can fetch the model: no proposer commits, nobody is slashed (an inline chain would slash them)."""
    chain = by_reference()
    rnd = chain.start_round()
    before = stakes(chain)
    chain.blocks_until(lambda s: s.round().id != rnd.id)
    assert chain.state().round_by_id(rnd.id).outcome == P.OUTCOME_NO_UPDATES
    assert stakes(chain) == before
    # proposers acted, then every voter lost the store: the round ends without a quorum, unslashed
    rnd = chain.start_round()
    propose_refs(chain, rnd)
    before = stakes(chain)
    chain.blocks_until(lambda s: s.round().id != rnd.id)
    assert chain.state().round_by_id(rnd.id).outcome == P.OUTCOME_NO_QUORUM
    assert stakes(chain) == before
    # one voter reached it: the others were down themselves, and are slashed as on any chain
    rnd = chain.start_round()
    propose_refs(chain, rnd)
    voter = rnd.voters[0]
    chain.block(chain.tx(chain.key(voter), chain.sealed_ballot(rnd, voter, LOSS, [GOOD, GOOD]).commit))
    before = stakes(chain)
    chain.blocks_until(lambda s: s.round().id != rnd.id)
    slashed = {a for a in rnd.voters if stakes(chain)[a] < before[a]}
    assert slashed == set(rnd.voters[1:])


def test_a_round_with_nothing_included_needs_no_aggregation():
    chain = by_reference()
    rnd = chain.start_round()
    propose_refs(chain, rnd)
    vote(chain, rnd, [[BAD, BAD]] * len(rnd.voters))
    chain.blocks_until(lambda s: s.round().id != rnd.id)
    assert chain.state().round_by_id(rnd.id).outcome == P.OUTCOME_REJECTED
    assert chain.state().model() == P.GlobalModel(version=0, round=0, ref=GENESIS_MODEL)


def test_the_aggregate_is_bit_exact_and_independent_of_order():
    rng = np.random.default_rng(0)
    model = [rng.integers(-(2**20), 2**20, (64, 32)), rng.integers(-(2**20), 2**20, (32,))]
    updates = [(int(n), [rng.integers(-(2**16), 2**16, t.shape) for t in model]) for n in (7, 300, 41)]
    first = aggregation.next_model(model, updates)
    again = aggregation.next_model(model, updates[::-1])
    assert all((a == b).all() and a.dtype == np.int64 for a, b in zip(first, again))
    total = sum(n for n, _ in updates)
    exact = [m + np.floor((sum(n * u[i] for n, u in updates) + total // 2) / total) for i, m in enumerate(model)]
    assert all((a == e).all() for a, e in zip(first, exact))


# --- the norm bound, by reference --------------------------------------------------------------


def test_a_report_gives_one_norm_per_included_update_within_bounds():
    chain = by_reference()
    rnd = chain.start_round()
    propose_refs(chain, rnd)
    vote(chain, rnd, [[BAD, GOOD]] * len(rnd.voters))  # the first update is left out
    aggregator = chain.round().voters[0]
    digest = hashlib.sha256(b"model").digest()
    too_many = chain.params.num_proposers + 1
    refused = [
        ([NORM, NORM], "included 1 updates"),  # one per included update, not per submitted one
        ([], "included 1 updates"),
        ([0], "within [1,"),
        ([chain.params.max_update_norm + 1], "within [1,"),
        ([NORM] * too_many, f"at most {chain.params.num_proposers} updates"),
    ]
    for norms, log in refused:
        result = check_report(chain, aggregator, rnd.id, digest, norms=norms)
        assert (result.code, log in result.log) == (Code.BAD_AGGREGATE_REPORT, True), result.log
    assert report(chain, aggregator, rnd.id, digest, norms=[NORM]).code == Code.OK
    assert chain.round().aggregate_reports[0].norms == [NORM]


def adopt(chain: Chain, rnd, norms: list[int], liar_norms: list[int] | None = None) -> None:
    """Every update included; the aggregators agree on a new model and on `norms`, but the last one
    reports `liar_norms` (the same file) when given."""
    propose_refs(chain, rnd)
    vote(chain, rnd, [[GOOD, GOOD]] * len(rnd.voters))
    digest = hashlib.sha256(b"model %d" % rnd.id).digest()
    *honest, last = chain.round().voters
    for sender in honest:
        assert report(chain, sender, rnd.id, digest, norms=norms).code == Code.OK
    assert report(chain, last, rnd.id, digest, norms=norms if liar_norms is None else liar_norms).code == Code.OK
    assert chain.state().round_by_id(rnd.id).outcome == P.OUTCOME_ACCEPTED


def test_the_adopted_norms_bound_the_next_rounds():
    chain = by_reference()
    bps = chain.params.norm_bound_bps
    first = chain.start_round()
    assert first.norm_bound == 0  # nothing revealed yet
    adopt(chain, first, [300, 500], liar_norms=[30, 50])  # the same file, other norms: not what was adopted
    mismatched = [e["address"] for e in chain.events("slashed") if e["reason"] == "aggregate_mismatch"]
    assert mismatched == [to_bech32(first.voters[-1])]
    assert chain.events("aggregate_adopted")[-1]["norms"] == "300,500"
    assert not chain.events("update_clipped")

    second = chain.start_round()
    assert second.norm_bound == 300 * bps // 10_000  # the lower median of 300 and 500
    adopt(chain, second, [300 * bps // 10_000 + 1, 100])
    clipped = chain.events("update_clipped")
    proposer = chain.state().round_by_id(second.id).submitted[0]
    assert [(e["proposer"], e["bound"]) for e in clipped] == [(to_bech32(proposer), str(second.norm_bound))]

    third = chain.start_round()  # 100, 300, 500 and the clipped one's norm as sent
    assert third.norm_bound == 300 * bps // 10_000


def test_the_aggregators_fedavg_clips_an_update_above_the_bound():
    """What each aggregator stores: every included update scaled down to the round's bound, as the
    chain does with inline updates, so a big step moves the model no further than the bound."""
    rng = np.random.default_rng(1)
    model = [tensors.encode(n, rng.integers(-(2**16), 2**16, s)) for n, s in MODEL_SHAPES]
    small = [rng.integers(-50, 50, s) for _, s in MODEL_SHAPES]
    big = [40 * rng.integers(-50, 50, s) for _, s in MODEL_SHAPES]
    updates = [artifacts.FixedUpdate(10, a, norm_bound.norm(a)) for a in (small, big)]
    bound = 2 * updates[0].norm
    store = KeptFiles()
    ref = artifacts.publish_aggregate(store, model, updates, bound)
    stored = [tensors.read(t) for t in blobs.decode(store.files[ref.digest], ref)]
    clipped = norm_bound.clip(big, updates[1].norm, bound)
    assert norm_bound.norm(clipped) <= bound < updates[1].norm
    expected = aggregation.next_model(artifacts.fixed_arrays(model), [(10, small), (10, clipped)])
    assert all((s == e).all() for s, e in zip(stored, expected))
    unbounded = artifacts.publish_aggregate(store, model, updates, 0)  # the first round, or the rule off
    assert unbounded.digest != ref.digest


# --- server momentum, by reference -------------------------------------------------------------


def test_aggregators_add_the_momentum_of_the_step_between_the_last_two_files():
    """By reference the chain holds the model's file and the one before; an aggregator reads the step
    as their difference and adds beta times it, bit-exactly as the chain does inline."""
    rng = np.random.default_rng(2)
    store = KeptFiles()
    before = [tensors.encode(n, rng.integers(-(2**16), 2**16, s)) for n, s in MODEL_SHAPES]
    first_update = [rng.integers(-500, 500, s) for _, s in MODEL_SHAPES]
    update = artifacts.FixedUpdate(10, first_update, norm_bound.norm(first_update))
    previous = artifacts.publish_aggregate(store, before, [update], 0)  # the genesis model never moved
    current_ref = artifacts.publish_aggregate(store, before, [update], 0)
    assert current_ref == previous  # no step yet: the same file whoever computes it
    current = blobs.decode(store.files[current_ref.digest], current_ref)
    genesis_file, genesis_ref = blobs.file_of(before)
    store.put(genesis_file)
    model = P.GlobalModel(version=1, ref=current_ref, previous=genesis_ref)
    step = artifacts.model_step(model, current, store)
    assert all((s == u).all() for s, u in zip(step, first_update))  # model 1 minus model 0
    assert artifacts.model_step(P.GlobalModel(version=0, ref=genesis_ref), before, store) == []

    second_update = [rng.integers(-500, 500, s) for _, s in MODEL_SHAPES]
    moved = artifacts.publish_aggregate(store, current, [artifacts.FixedUpdate(10, second_update, 1)], 0, step, 5_000)
    stored = [tensors.read(t) for t in blobs.decode(store.files[moved.digest], moved)]
    expected = [tensors.read(c) + u + (5_000 * f) // 10_000 for c, u, f in zip(current, second_update, first_update)]
    assert all((s == e).all() for s, e in zip(stored, expected))
    plain = artifacts.publish_aggregate(store, current, [artifacts.FixedUpdate(10, second_update, 1)], 0)
    assert plain.digest != moved.digest  # an aggregator that forgot the momentum disagrees with the majority
    # voters judge from the model plus the same momentum
    judged = artifacts.judged_model(current, step, 5_000)
    assert all(
        (tensors.read(j) == tensors.read(c) + (5_000 * f) // 10_000).all() for j, c, f in zip(judged, current, step)
    )


def accept(chain: Chain, rnd, scores: list[int]) -> P.Round:
    """Every voter finds each update as scored and reports the same new model."""
    vote(chain, rnd, [scores] * len(rnd.voters))
    new_model = hashlib.sha256(b"model after round %d" % rnd.id).digest()
    for sender in chain.round().voters:
        assert report(chain, sender, rnd.id, new_model).code == Code.OK
    return chain.state().round_by_id(rnd.id)


def test_the_copy_rule_reads_the_fingerprints_proposers_reveal_by_reference():
    """By reference the chain compares the fingerprints the proposers revealed (the voters checked
    them against the files): one that copies another proposer's earlier update is condemned."""
    chain = by_reference(copy_cosine_bps=9_900, copy_window_rounds=10)
    rnd = chain.start_round()
    refs = propose_refs(chain, rnd)
    first = accept(chain, rnd, [GOOD, GOOD])
    assert first.outcome == P.OUTCOME_ACCEPTED
    kept = {f.proposer: list(f.values) for f in chain.state().fingerprints()}
    assert kept == {a: fingerprint(refs[a].digest) for a in first.submitted}

    rnd = chain.start_round()
    copier, other = rnd.proposers
    victim = next(a for a in first.submitted if a != copier)
    perturbed = [v + (1 if i % 2 else -1) for i, v in enumerate(kept[victim])]  # a cosine above 0.99
    before = stakes(chain)[copier]
    propose_refs(chain, rnd, {copier: perturbed, other: kept[other] if other in kept else fingerprint(b"fresh")})
    second = accept(chain, rnd, [GOOD, GOOD])
    verdicts = {v.proposer: v for v in second.verdicts}
    assert (verdicts[copier].condemned, verdicts[copier].included, verdicts[copier].copy_of) == (True, False, victim)
    assert verdicts[copier].copy_of_round == first.id
    assert (verdicts[other].condemned, verdicts[other].included) == (False, True)  # its own earlier step is no copy
    assert {f.round for f in chain.state().fingerprints() if f.proposer == copier} == (
        {first.id} if copier in first.submitted else set()
    )  # a condemned update's fingerprint is forgotten
    assert stakes(chain)[copier] == before * (10_000 - chain.params.proposer_slash_bps) // 10_000
    state = chain.state()
    assert [e.reason for e in state.history(copier, state.must_participant(copier))][-1] == "update_copied"


def test_a_voter_finds_an_update_whose_fingerprint_is_not_its_files_unusable():
    params = genesis.default_params()
    store = KeptFiles()
    rng = np.random.default_rng(7)
    update = [(n, rng.normal(0, 0.01, s).astype(np.float32)) for n, s in MODEL_SHAPES]
    published = artifacts.publish_update(store, update, params.frac_bits)
    model = P.GlobalModel(ref=GENESIS_MODEL)
    sent = P.Update(num_samples=10, ref=published.ref, fingerprint=published.fingerprint)
    fixed = artifacts.fetch_update(sent, model, params, store)
    assert copies.fingerprint_of(fixed.arrays).tolist() == published.fingerprint  # what the voter reads
    other = [(n, v + 0.005) for n, v in update]
    sent.fingerprint[:] = artifacts.publish_update(KeptFiles(), other, params.frac_bits).fingerprint
    with pytest.raises(artifacts.Unusable, match="fingerprint"):
        artifacts.fetch_update(sent, model, params, store)
    # an aggregator reads it without the check: the voters made it, and it matters to the copy rule only
    unchecked = artifacts.fetch_update(sent, model, params, store, check_fingerprint=False)
    assert all((a == b).all() for a, b in zip(unchecked.arrays, fixed.arrays))
