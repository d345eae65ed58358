"""The round game, driven by txs and block time:
SELECT -> PROPOSE -> REVEAL_UPDATES -> VOTE -> REVEAL_BALLOTS -> TALLY
(models by reference: ... -> REVEAL_BALLOTS -> AGGREGATE -> TALLY).

Updates and ballots are sealed (abci_app/sealing.py): in PROPOSE (VOTE) each drawn party commits
to a digest of its work, and reveals the work in the next phase, once no commitment can change;
whoever saw another's update or ballot before committing could only have copied it in a
commitment it can no longer make. A party that commits but does not reveal is silent, and slashed
for liveness like one that never committed.

Phase changes happen at the end of a block, so every tx in block h+1 sees the phase that
block h's end left behind, and CheckTx (which reads committed state) predicts it correctly.
A phase ends in the block where its last expected tx lands, or in the first block whose time
reaches its deadline (block time is the header's BFT time: deterministic, unlike a clock), so a
round lasts as long as its slowest participant needs and no longer. The next round is drawn in
the block that tallies the previous one.

A model larger than Params.max_inline_model_bytes is federated by reference: updates and the
global model are files in an object store and the chain holds their digests (types_pb2.BlobRef),
so no validator's memory or disk grows with the model. The chain cannot read such an update: the
voters, who fetch it, judge its availability and bounds along with its effect (and that the
fingerprint its proposer revealed for the copy rule is the file's), and, after the
tally, compute the new model (abci_app/aggregation.py defines it bit-exactly) and report its
digest; the digest reported by most of them, holding most of their stake, becomes the global
model (abci_app/aggregate_reports.py). Verdicts are paid by abci_app/settlement.py, and a round
ends in abci_app/round_close.py.

The model moves by the FedAvg of the included updates plus a share of its last move (server
momentum, FedAvgM: Params.server_momentum_bps), which voters add to the model they judge from.

An included update joins the FedAvg at most at its round's norm bound (abci_app/norm_bound.py), a
share of the median norm of recent rounds' updates: no minority can take the model further. By
reference the aggregators clip, and the norms they agree on feed the next rounds' bounds. It
weighs at most its round's sample bound (abci_app/sample_bound.py), a share of the median sample
count claimed by this and recent rounds' updates, set when VOTE begins: no minority can outweigh
the others by what it claims.
"""

import dataclasses
import hashlib
import math
import struct
from collections.abc import Mapping

from abci_app import (
    aggregate_reports,
    aggregation,
    copies,
    judgement,
    norm_bound,
    sample_bound,
    sealing,
    settlement,
    staking,
    tensors,
    voter_record,
    wire,
)
from abci_app.codes import Code, TxError
from abci_app.context import Context
from abci_app.messages import CommitBallot, CommitUpdate, Reference, SubmitUpdate, Vote
from abci_app.phases import AGGREGATE, PROPOSE, REVEAL_BALLOTS, REVEAL_UPDATES, SELECT, VOTE, require_phase
from abci_app.round_close import finish, slash_silent, verdict_counts
from abci_app.units import BPS
from flchain.v1 import types_pb2


def draw_seed(block_hash: bytes, round_id: int) -> bytes:
    """Seed of a draw: chain data nobody controls alone once the block is decided."""
    return hashlib.sha256(b"flchain/draw" + block_hash + struct.pack(">Q", round_id)).digest()


def draw(
    proposer_turns: Mapping[bytes, int], seed: bytes, num_proposers: int, num_voters: int
) -> tuple[list[bytes], list[bytes]]:
    """Disjoint proposers and voters among the eligible addresses (the keys of proposer_turns).

    The proposers are those with the fewest proposer turns, ties ranked by sha256(seed || address):
    every participant proposes once per pass over the federation, in an order drawn afresh each
    round. A draw by rank alone left a participant's turns to luck, and only a proposer earns: an
    honest participant with unusual data, drawn once in 31 rounds, had no proposer pay to offset
    what its voting cost and was removed (twenty-third round of the parameter study). The voters
    are ranked by the same hash among the rest.

    With fewer eligible participants than seats, the proposer/voter split keeps its ratio, the
    proposers' share rounded to the nearest (at least one proposer, the rest voters): rounding down
    would leave a federation that lost a few members with a proposer fewer than it can afford.
    """
    rank = {a: hashlib.sha256(seed + a).digest() for a in proposer_turns}  # once per address, for both orders
    by_turns = sorted(proposer_turns, key=lambda a: (proposer_turns[a], rank[a]))
    seats = num_proposers + num_voters
    if len(by_turns) >= seats:
        p, v = num_proposers, num_voters
    else:
        p = max(1, (2 * len(by_turns) * num_proposers + seats) // (2 * seats))
        v = len(by_turns) - p
    voters = sorted(by_turns[p:], key=rank.__getitem__)[:v]
    return sorted(by_turns[:p]), sorted(voters)


# --- messages ----------------------------------------------------------------------------------


def commit_update(ctx: Context, sender: bytes, msg: CommitUpdate) -> None:
    rnd = ctx.state.round()
    require_phase(rnd, PROPOSE, msg.round)
    if sender not in rnd.proposers:
        raise TxError(Code.NOT_PROPOSER, f"sender is not a proposer of round {rnd.id}")
    _commit(ctx, rnd, rnd.update_commitments, sender, msg.commitment, "update_committed")


def commit_ballot(ctx: Context, sender: bytes, msg: CommitBallot) -> None:
    rnd = ctx.state.round()
    require_phase(rnd, VOTE, msg.round)
    if sender not in rnd.voters:
        raise TxError(Code.NOT_VOTER, f"sender is not a voter of round {rnd.id}")
    _commit(ctx, rnd, rnd.ballot_commitments, sender, msg.commitment, "ballot_committed")


def _commit(ctx: Context, rnd: types_pb2.Round, commitments, sender: bytes, digest: bytes, kind: str) -> None:
    if any(c.sender == sender for c in commitments):
        raise TxError(Code.ALREADY_COMMITTED, f"sender already committed in round {rnd.id}")
    # Another party's digest is accepted (refusing it would let a front-runner who copies a
    # commitment from the mempool lock its owner out); the copier can never reveal it.
    commitments.append(types_pb2.Commitment(sender=sender, digest=digest, height=ctx.height))
    ctx.state.set_round(rnd)
    ctx.emit(kind, round=rnd.id, sender=sender)


def _check_reveal(rnd: types_pb2.Round, commitments, kind: bytes, sender: bytes, salt: bytes, digest: bytes) -> None:
    committed = next((c.digest for c in commitments if c.sender == sender), None)
    if committed is None:
        raise TxError(Code.NOT_COMMITTED, f"sender made no commitment in round {rnd.id}; only a commitment is revealed")
    if sealing.commitment(kind, rnd.id, sender, salt, digest) != committed:
        raise TxError(
            Code.COMMITMENT_MISMATCH,
            f"the reveal does not match the sender's commitment in round {rnd.id} (other content, or another salt)",
        )


def submit_update(ctx: Context, sender: bytes, msg: SubmitUpdate) -> None:
    rnd = ctx.state.round()
    require_phase(rnd, REVEAL_UPDATES, msg.round)
    if sender not in rnd.proposers:
        raise TxError(Code.NOT_PROPOSER, f"sender is not a proposer of round {rnd.id}")
    if sender in rnd.submitted:
        raise TxError(Code.ALREADY_SUBMITTED, f"sender already submitted an update in round {rnd.id}")
    _check_reveal(rnd, rnd.update_commitments, sealing.UPDATE, sender, msg.salt, msg.digest)
    model = ctx.state.model()
    if model.HasField("ref") != (msg.reference is not None):
        raise TxError(
            Code.BAD_REFERENCE,
            "this chain's model is federated by reference: an update is a BlobRef to the object store"
            if model.HasField("ref")
            else "this chain's model is inline: an update carries its tensors",
        )
    if msg.reference is not None:
        update = _referenced_update(model, rnd.id, sender, msg.num_samples, msg.reference, msg.fingerprint)
    else:
        update = _inline_update(ctx, model, rnd.id, sender, msg)
    ctx.state.set_update(update)
    claims = ctx.state.sample_history()  # what this round's sample bound is the median of
    sample_bound.remember(claims, rnd.id, msg.num_samples, ctx.params.norm_window_rounds)
    ctx.state.set_sample_history(claims)
    rnd.submitted.append(sender)
    ctx.state.set_round(rnd)
    ctx.emit("update_submitted", round=rnd.id, proposer=sender, num_samples=msg.num_samples)


def _inline_update(
    ctx: Context, model: types_pb2.GlobalModel, round_id: int, sender: bytes, msg: SubmitUpdate
) -> types_pb2.Update:
    expected = tensors.shapes(model.tensors)
    got = [(t.name, t.shape) for t in msg.tensors]
    if got != expected:
        raise TxError(Code.BAD_SHAPE, f"update tensors {got} do not match the model {expected}")
    values = [t.values for t in msg.tensors]
    proposed = norm_bound.root_up(wire.check_norm(values, ctx.params.max_update_norm))
    history = ctx.state.norm_history()  # what the next rounds' norm bounds are the median of
    norm_bound.remember(history, round_id, proposed, ctx.params.norm_window_rounds)
    ctx.state.set_norm_history(history)
    return types_pb2.Update(
        round=round_id,
        proposer=sender,
        num_samples=msg.num_samples,
        tensors=[tensors.encode(t.name, t.values) for t in msg.tensors],
        norm=proposed,
    )


def _referenced_update(
    model: types_pb2.GlobalModel,
    round_id: int,
    sender: bytes,
    num_samples: int,
    reference: Reference,
    fingerprint: tuple[int, ...],
) -> types_pb2.Update:
    """Only the form is checked here: the voters fetch the bytes and judge them, the fingerprint
    included (see MsgVote)."""
    expected = [(t.name, tuple(t.shape)) for t in model.ref.manifest]
    if reference.shapes() != expected:
        raise TxError(Code.BAD_SHAPE, f"referenced tensors {reference.shapes()} do not match the model {expected}")
    size = copies.size_for(sum(math.prod(shape) for _, shape in expected))
    if len(fingerprint) != size:
        raise TxError(
            Code.BAD_FINGERPRINT, f"this model's updates have fingerprints of {size} values, got {len(fingerprint)}"
        )
    return types_pb2.Update(
        round=round_id, proposer=sender, num_samples=num_samples, ref=reference.to_proto(), fingerprint=fingerprint
    )


def vote(ctx: Context, sender: bytes, msg: Vote) -> None:
    rnd = ctx.state.round()
    require_phase(rnd, REVEAL_BALLOTS, msg.round)
    if sender not in rnd.voters:
        raise TxError(Code.NOT_VOTER, f"sender is not a voter of round {rnd.id}")
    if any(b.voter == sender for b in rnd.ballots):
        raise TxError(Code.ALREADY_VOTED, f"sender already voted in round {rnd.id}")
    _check_reveal(rnd, rnd.ballot_commitments, sealing.BALLOT, sender, msg.salt, msg.digest)
    if len(msg.scores) != len(rnd.submitted):
        raise TxError(
            Code.BAD_BALLOT,
            f"round {rnd.id} has {len(rnd.submitted)} updates under vote; the ballot scores {len(msg.scores)}",
        )
    ballot = types_pb2.Ballot(
        voter=sender,
        loss=msg.loss,
        start_loss=msg.start_loss,
        scores=msg.scores,
        alignments=msg.alignments,
        height=ctx.height,
    )
    rnd.ballots.append(ballot)
    ctx.state.set_round(rnd)
    ctx.emit(
        "vote_cast",
        round=rnd.id,
        voter=sender,
        loss=msg.loss,
        start_loss=msg.start_loss,
        scores=list(msg.scores),
        alignments=list(msg.alignments),
    )


# --- end of block ------------------------------------------------------------------------------


def end_block(ctx: Context, block_hash: bytes, time_ms: int) -> None:
    """Advance the current round if this block ends its phase; draw a round that waits in SELECT."""
    rnd = ctx.state.round()
    if rnd.phase == PROPOSE:
        if len(rnd.update_commitments) == len(rnd.proposers) or time_ms >= rnd.propose_deadline_ms:
            _seal_updates(ctx, rnd, time_ms)
    elif rnd.phase == REVEAL_UPDATES:
        if len(rnd.submitted) == len(rnd.update_commitments) or time_ms >= rnd.reveal_updates_deadline_ms:
            _close_proposals(ctx, rnd, time_ms)
    elif rnd.phase == VOTE:
        if len(rnd.ballot_commitments) == len(rnd.voters) or time_ms >= rnd.vote_deadline_ms:
            _seal_ballots(ctx, rnd, time_ms)
    elif rnd.phase == REVEAL_BALLOTS:
        if len(rnd.ballots) == len(rnd.ballot_commitments) or time_ms >= rnd.reveal_ballots_deadline_ms:
            _tally(ctx, rnd, time_ms)
    elif rnd.phase == AGGREGATE:
        if aggregate_reports.all_reported(rnd) or time_ms >= rnd.aggregate_deadline_ms:
            aggregate_reports.adopt(ctx, rnd)
    rnd = ctx.state.round()
    if rnd.phase == SELECT:  # a round just finished, or one waiting for enough participants
        _try_draw(ctx, rnd, block_hash, time_ms)


def _try_draw(ctx: Context, rnd: types_pb2.Round, block_hash: bytes, time_ms: int) -> None:
    proposer_turns = {
        p.address: p.proposer_turns
        for p in ctx.state.participants()
        if p.status == staking.BONDED and p.stake >= ctx.params.min_stake
    }
    if len(proposer_turns) < ctx.params.min_participants:
        return  # wait in SELECT until enough participants have bonded
    rnd.seed = draw_seed(block_hash, rnd.id)
    proposers, voters = draw(proposer_turns, rnd.seed, ctx.params.num_proposers, ctx.params.num_voters)
    rnd.proposers[:], rnd.voters[:] = proposers, voters
    rnd.phase, rnd.draw_height = PROPOSE, ctx.height
    rnd.propose_deadline_ms = time_ms + ctx.params.propose_timeout_ms
    rnd.norm_bound = norm_bound.bound(ctx.state.norm_history(), ctx.params.norm_bound_bps)
    for address in proposers:
        p = ctx.state.must_participant(address)
        p.rounds_proposed, p.proposer_turns = p.rounds_proposed + 1, p.proposer_turns + 1
        ctx.state.set_participant(p)
    for address in voters:
        p = ctx.state.must_participant(address)
        p.rounds_voted += 1
        ctx.state.set_participant(p)
    ctx.state.set_round(rnd)
    ctx.emit(
        "round_started",
        round=rnd.id,
        proposers=proposers,
        voters=voters,
        propose_deadline_ms=rnd.propose_deadline_ms,
        model_version=rnd.model_version,
        norm_bound=rnd.norm_bound,
    )


def _seal_updates(ctx: Context, rnd: types_pb2.Round, time_ms: int) -> None:
    """End of PROPOSE: every commitment is in, so updates can be revealed without being copied."""
    committed = [c.sender for c in rnd.update_commitments]
    slash_silent(ctx, rnd, rnd.proposers, committed, "liveness_proposer")
    if not committed:
        finish(ctx, rnd, types_pb2.OUTCOME_NO_UPDATES)
        return
    rnd.phase = REVEAL_UPDATES
    rnd.reveal_updates_deadline_ms = time_ms + ctx.params.reveal_timeout_ms
    ctx.state.set_round(rnd)
    ctx.emit("updates_sealed", round=rnd.id, committed=committed, reveal_deadline_ms=rnd.reveal_updates_deadline_ms)


def _seal_ballots(ctx: Context, rnd: types_pb2.Round, time_ms: int) -> None:
    """End of VOTE: every ballot commitment is in; too few for a quorum ends the round here."""
    committed = [c.sender for c in rnd.ballot_commitments]
    slash_silent(ctx, rnd, rnd.voters, committed, "liveness_voter")
    if not committed or len(committed) * BPS < ctx.params.quorum_bps * len(rnd.voters):  # none: even at quorum 0
        finish(ctx, rnd, types_pb2.OUTCOME_NO_QUORUM, ballots=0)
        return
    rnd.phase = REVEAL_BALLOTS
    rnd.reveal_ballots_deadline_ms = time_ms + ctx.params.reveal_timeout_ms
    ctx.state.set_round(rnd)
    ctx.emit("ballots_sealed", round=rnd.id, committed=committed, reveal_deadline_ms=rnd.reveal_ballots_deadline_ms)


def _close_proposals(ctx: Context, rnd: types_pb2.Round, time_ms: int) -> None:
    slash_silent(ctx, rnd, [c.sender for c in rnd.update_commitments], rnd.submitted, "unrevealed_update")
    if not rnd.submitted:
        finish(ctx, rnd, types_pb2.OUTCOME_NO_UPDATES)
        return
    updates = [ctx.state.must_update(rnd.id, a) for a in rnd.submitted]
    _weigh(ctx, rnd, updates)
    if not ctx.state.model().HasField("ref"):  # by reference, each voter forms the FedAvg itself
        _store_candidate(ctx, rnd, updates)
    if ctx.params.copy_cosine_bps:  # the copy rule compares them at the tally, and later rounds' with them
        for update in updates:
            ctx.state.set_fingerprint(copies.remember(update))
    rnd.phase, rnd.vote_height = VOTE, ctx.height
    rnd.vote_deadline_ms = time_ms + ctx.params.vote_timeout_ms
    ctx.state.set_round(rnd)
    ctx.emit(
        "candidate_ready",
        round=rnd.id,
        contributors=list(rnd.submitted),
        vote_deadline_ms=rnd.vote_deadline_ms,
        sample_bound=rnd.sample_bound,
    )


def _weigh(ctx: Context, rnd: types_pb2.Round, updates: list[types_pb2.Update]) -> None:
    """Each revealed update's weight in the round's FedAvg: its claimed samples, at most the round's
    sample bound (known now that every claim of the round is in, before anyone votes)."""
    rnd.sample_bound = sample_bound.bound(ctx.state.sample_history(), ctx.params.sample_bound_bps)
    for update in updates:
        update.weight = sample_bound.weight(update.num_samples, rnd.sample_bound)
        ctx.state.set_update(update)
        if update.weight < update.num_samples:
            ctx.emit(
                "claim_capped",
                round=rnd.id,
                proposer=update.proposer,
                num_samples=update.num_samples,
                bound=rnd.sample_bound,
            )


def _store_candidate(ctx: Context, rnd: types_pb2.Round, updates: list[types_pb2.Update]) -> None:
    """The FedAvg of every revealed update, which voters compare each leave-one-out aggregate to."""
    delta = aggregation.fedavg([(u.weight, [tensors.read(t) for t in u.tensors]) for u in updates])
    names = [t.name for t in updates[0].tensors]
    ctx.state.set_candidate(
        types_pb2.Candidate(
            round=rnd.id,
            base_version=rnd.model_version,
            total_samples=sum(u.weight for u in updates),
            contributors=list(rnd.submitted),
            delta=[tensors.encode(n, d) for n, d in zip(names, delta)],
        )
    )


def _tally(ctx: Context, rnd: types_pb2.Round, time_ms: int) -> None:
    params = ctx.params
    slash_silent(
        ctx, rnd, [c.sender for c in rnd.ballot_commitments], [b.voter for b in rnd.ballots], "unrevealed_ballot"
    )
    cast = len(rnd.ballots)
    if not cast or cast * BPS < params.quorum_bps * len(rnd.voters):  # no ballot judges nothing, even at quorum 0
        finish(ctx, rnd, types_pb2.OUTCOME_NO_QUORUM, ballots=cast)
        return
    # the records as they stood before this round's ballots join them (settlement adds them)
    weights = {b.voter: voter_record.ballot_weight(ctx.state.must_participant(b.voter)) for b in rnd.ballots}
    bars = judgement.Bars.of(params)
    gain = judgement.round_gain(rnd.ballots, weights, bars)
    reading = dataclasses.asdict(gain)  # the RoundGain message has the very same fields
    rnd.gain.CopyFrom(types_pb2.RoundGain(**reading))
    ctx.emit("round_gain", round=rnd.id, **reading)
    updates, voters = judgement.judge(list(rnd.submitted), list(rnd.ballots), weights, bars, gain, len(rnd.proposers))
    updates = _condemn_copies(ctx, rnd, updates)
    for verdict in updates:
        if verdict.condemned:  # kept, it could only frame the one it copied (abci_app/copies.py)
            ctx.state.forget_fingerprint(rnd.id, verdict.proposer)
        settlement.pay_proposer(ctx, rnd.id, verdict)
        fields = dataclasses.asdict(verdict)  # the Verdict message has the very same fields
        rnd.verdicts.append(types_pb2.Verdict(**fields))
        ctx.emit("update_judged", round=rnd.id, **fields)
    for voter in voters:
        settlement.pay_voter(ctx, rnd.id, voter)
    included = [v.proposer for v in updates if v.included]
    if included and ctx.state.model().HasField("ref"):
        aggregate_reports.start(ctx, rnd, included, time_ms)
        return
    if included:
        _apply(ctx, rnd, included)
    outcome = types_pb2.OUTCOME_ACCEPTED if included else types_pb2.OUTCOME_REJECTED
    finish(ctx, rnd, outcome, **verdict_counts(rnd))


def _condemn_copies(
    ctx: Context, rnd: types_pb2.Round, verdicts: list[judgement.UpdateVerdict]
) -> list[judgement.UpdateVerdict]:
    """The copy rule (abci_app/copies.py) overrides the ballots' verdict on a copied update; the
    voters' own verdicts stand, since they judged what they could measure."""
    found = copies.find(ctx.state.fingerprints(), rnd.id, ctx.params.copy_cosine_bps)
    judged = []
    for verdict in verdicts:
        copy = found.get(verdict.proposer)
        if copy is not None:
            verdict = copies.condemn(verdict, copy)
            ctx.emit(
                "update_copied",
                round=rnd.id,
                proposer=verdict.proposer,
                copy_of=copy.of,
                copy_of_round=copy.round,
                cosine_bps=copy.cosine_bps,
            )
        judged.append(verdict)
    return judged


def _apply(ctx: Context, rnd: types_pb2.Round, included: list[bytes]) -> None:
    """The global model moves by the FedAvg of the included updates, each scaled down to the
    round's norm bound if it exceeds it, plus the server momentum (a share of its last move).
    Voters judged the updates as sent, so a proposer answers for its whole step; the bound only
    limits how far one step can move the model."""
    weighted = []
    for update in (ctx.state.must_update(rnd.id, a) for a in included):
        values = [tensors.read(t) for t in update.tensors]
        if norm_bound.exceeds(update.norm, rnd.norm_bound):
            values = norm_bound.clip(values, update.norm, rnd.norm_bound)
            ctx.emit("update_clipped", round=rnd.id, proposer=update.proposer, norm=update.norm, bound=rnd.norm_bound)
        weighted.append((update.weight, values))
    model = ctx.state.model()
    current = [tensors.read(t) for t in model.tensors]
    step = [tensors.read(t) for t in model.step]
    new = aggregation.next_model(current, weighted, step, ctx.params.server_momentum_bps)
    names = [t.name for t in model.tensors]
    ctx.state.set_model(
        types_pb2.GlobalModel(
            version=model.version + 1,
            round=rnd.id,
            tensors=[tensors.encode(n, v) for n, v in zip(names, new)],
            step=[tensors.encode(n, s) for n, s in zip(names, aggregation.last_step(current, new))],
        )
    )
