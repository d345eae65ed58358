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
voters, who fetch it, judge its availability and bounds along with its effect, and, after the
tally, compute the new model (abci_app/aggregation.py defines it bit-exactly) and report its
digest; the digest reported by a majority of their stake becomes the global model.

An included update joins the FedAvg at most at its round's norm bound (abci_app/norm_bound.py), a
share of the median norm of recent rounds' updates: no minority can take the model further. By
reference the aggregators clip, and the norms they agree on feed the next rounds' bounds.
"""

import dataclasses
import hashlib
import struct

from abci_app import aggregation, judgement, norm_bound, sealing, staking, tensors, voter_record, wire
from abci_app.codes import Code, TxError
from abci_app.context import Context
from abci_app.messages import CommitBallot, CommitUpdate, Reference, ReportAggregate, SubmitUpdate, Vote
from flchain.v1 import types_pb2

SELECT, PROPOSE, REVEAL_UPDATES, VOTE, REVEAL_BALLOTS, AGGREGATE, TALLY = (
    types_pb2.PHASE_SELECT,
    types_pb2.PHASE_PROPOSE,
    types_pb2.PHASE_REVEAL_UPDATES,
    types_pb2.PHASE_VOTE,
    types_pb2.PHASE_REVEAL_BALLOTS,
    types_pb2.PHASE_AGGREGATE,
    types_pb2.PHASE_TALLY,
)
# the commit phase each reveal phase follows
_SEALED_IN: dict[int, int] = {REVEAL_UPDATES: PROPOSE, REVEAL_BALLOTS: VOTE}


def open_round(round_id: int, height: int, model_version: int) -> types_pb2.Round:
    return types_pb2.Round(id=round_id, phase=SELECT, opened_height=height, model_version=model_version)


def draw_seed(block_hash: bytes, round_id: int) -> bytes:
    """Seed of a draw: chain data nobody controls alone once the block is decided."""
    return hashlib.sha256(b"flchain/draw" + block_hash + struct.pack(">Q", round_id)).digest()


def draw(eligible: list[bytes], seed: bytes, num_proposers: int, num_voters: int) -> tuple[list[bytes], list[bytes]]:
    """Disjoint proposers and voters: rank addresses by sha256(seed || address).

    With fewer eligible participants than seats, the proposer/voter split keeps its ratio
    (at least one proposer, the rest voters).
    """
    ranked = sorted(eligible, key=lambda a: hashlib.sha256(seed + a).digest())
    seats = num_proposers + num_voters
    if len(ranked) >= seats:
        p, v = num_proposers, num_voters
    else:
        p = max(1, len(ranked) * num_proposers // seats)
        v = len(ranked) - p
    return sorted(ranked[:p]), sorted(ranked[p : p + v])


# --- messages ----------------------------------------------------------------------------------


def _require_phase(rnd: types_pb2.Round, phase: int, round_id: int) -> None:
    if rnd.phase != phase:
        early = " (an early reveal: every commitment must be in first)" if _SEALED_IN.get(phase) == rnd.phase else ""
        raise TxError(
            Code.WRONG_PHASE,
            f"round {rnd.id} is in {types_pb2.Phase.Name(rnd.phase)}, not {types_pb2.Phase.Name(phase)}{early}",
        )
    if round_id != rnd.id:
        raise TxError(Code.WRONG_ROUND, f"message is for round {round_id}, the current round is {rnd.id}")


def commit_update(ctx: Context, sender: bytes, msg: CommitUpdate) -> None:
    rnd = ctx.state.round()
    _require_phase(rnd, PROPOSE, msg.round)
    if sender not in rnd.proposers:
        raise TxError(Code.NOT_PROPOSER, f"sender is not a proposer of round {rnd.id}")
    _commit(ctx, rnd, rnd.update_commitments, sender, msg.commitment, "update_committed")


def commit_ballot(ctx: Context, sender: bytes, msg: CommitBallot) -> None:
    rnd = ctx.state.round()
    _require_phase(rnd, VOTE, msg.round)
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
    _require_phase(rnd, REVEAL_UPDATES, msg.round)
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
        update = _referenced_update(model, rnd.id, sender, msg.num_samples, msg.reference)
    else:
        update = _inline_update(ctx, model, rnd.id, sender, msg)
    ctx.state.set_update(update)
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
    model: types_pb2.GlobalModel, round_id: int, sender: bytes, num_samples: int, reference: Reference
) -> types_pb2.Update:
    """Only the form is checked here: the voters fetch the bytes and judge them (see MsgVote)."""
    expected = [(t.name, tuple(t.shape)) for t in model.ref.manifest]
    if reference.shapes() != expected:
        raise TxError(Code.BAD_SHAPE, f"referenced tensors {reference.shapes()} do not match the model {expected}")
    return types_pb2.Update(round=round_id, proposer=sender, num_samples=num_samples, ref=reference.to_proto())


def vote(ctx: Context, sender: bytes, msg: Vote) -> None:
    rnd = ctx.state.round()
    _require_phase(rnd, REVEAL_BALLOTS, msg.round)
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
    rnd.ballots.append(types_pb2.Ballot(voter=sender, loss=msg.loss, scores=msg.scores, height=ctx.height))
    ctx.state.set_round(rnd)
    ctx.emit("vote_cast", round=rnd.id, voter=sender, loss=msg.loss, scores=list(msg.scores))


def report_aggregate(ctx: Context, sender: bytes, msg: ReportAggregate) -> None:
    rnd = ctx.state.round()
    _require_phase(rnd, AGGREGATE, msg.round)
    if sender not in _aggregators(rnd):
        raise TxError(Code.NOT_AGGREGATOR, f"only the voters whose ballots counted in round {rnd.id} aggregate it")
    if any(r.sender == sender for r in rnd.aggregate_reports):
        raise TxError(Code.ALREADY_REPORTED, f"sender already reported round {rnd.id}'s aggregate")
    included = sum(v.included for v in rnd.verdicts)
    if len(msg.norms) != included:
        raise TxError(
            Code.BAD_AGGREGATE_REPORT,
            f"round {rnd.id} included {included} updates; the report gives {len(msg.norms)} norms",
        )
    rnd.aggregate_reports.append(
        types_pb2.AggregateReport(
            sender=sender, digest=msg.blob_digest, size=msg.size, height=ctx.height, norms=msg.norms
        )
    )
    ctx.state.set_round(rnd)
    ctx.emit(
        "aggregate_reported",
        round=rnd.id,
        sender=sender,
        digest=msg.blob_digest.hex(),
        size=msg.size,
        norms=list(msg.norms),
    )


def _aggregators(rnd: types_pb2.Round) -> list[bytes]:
    return [b.voter for b in rnd.ballots]


ReportKey = tuple[bytes, int, tuple[int, ...]]


def report_key(report: types_pb2.AggregateReport) -> ReportKey:
    """What aggregators must agree on: the new model's file (digest, size) and the included norms."""
    return report.digest, report.size, tuple(report.norms)


def majority_report(reports, stakes: dict[bytes, int]) -> ReportKey | None:
    """The report (digest, size, norms) made by more than half of the aggregators' stake (all of
    them, the silent included), or None. At most one can be: two would hold more than the whole."""
    support: dict[ReportKey, int] = {}
    for report in reports:
        key = report_key(report)
        support[key] = support.get(key, 0) + stakes[report.sender]
    total = sum(stakes.values())
    return next((key for key, stake in support.items() if 2 * stake > total), None)


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
        if len(rnd.aggregate_reports) == len(rnd.ballots) or time_ms >= rnd.aggregate_deadline_ms:
            _adopt_aggregate(ctx, rnd)
    rnd = ctx.state.round()
    if rnd.phase == SELECT:  # a round just finished, or one waiting for enough participants
        _try_draw(ctx, rnd, block_hash, time_ms)


def _try_draw(ctx: Context, rnd: types_pb2.Round, block_hash: bytes, time_ms: int) -> None:
    eligible = [
        p.address for p in ctx.state.participants() if p.status == staking.BONDED and p.stake >= ctx.params.min_stake
    ]
    if len(eligible) < ctx.params.min_participants:
        return  # wait in SELECT until enough participants have bonded
    rnd.seed = draw_seed(block_hash, rnd.id)
    proposers, voters = draw(eligible, rnd.seed, ctx.params.num_proposers, ctx.params.num_voters)
    rnd.proposers[:], rnd.voters[:] = proposers, voters
    rnd.phase, rnd.draw_height = PROPOSE, ctx.height
    rnd.propose_deadline_ms = time_ms + ctx.params.propose_timeout_ms
    rnd.norm_bound = norm_bound.bound(ctx.state.norm_history(), ctx.params.norm_bound_bps)
    for address, counter in [(a, "rounds_proposed") for a in proposers] + [(a, "rounds_voted") for a in voters]:
        p = ctx.state.must_participant(address)
        setattr(p, counter, getattr(p, counter) + 1)
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


def _slash_silent(ctx: Context, rnd: types_pb2.Round, drawn, acted, reason: str) -> None:
    """Liveness: every drawn party that did not act in the phase just ended.

    With a model by reference, a phase in which nobody acted slashes nobody: every party needs the
    object store to act (the model is there), and a store down for everyone is no party's fault;
    when some parties did act, the store answered, and the silent ones were down themselves."""
    done = set(acted)
    if not done and drawn and ctx.state.model().HasField("ref"):
        ctx.emit("nobody_acted", round=rnd.id, phase=types_pb2.Phase.Name(rnd.phase), spared=reason)
        return
    for address in drawn:
        if address not in done:
            staking.slash(ctx, address, rnd.id, ctx.params.liveness_slash_bps, reason)


def _seal_updates(ctx: Context, rnd: types_pb2.Round, time_ms: int) -> None:
    """End of PROPOSE: every commitment is in, so updates can be revealed without being copied."""
    committed = [c.sender for c in rnd.update_commitments]
    _slash_silent(ctx, rnd, rnd.proposers, committed, "liveness_proposer")
    if not committed:
        _finish(ctx, rnd, types_pb2.OUTCOME_NO_UPDATES)
        return
    rnd.phase = REVEAL_UPDATES
    rnd.reveal_updates_deadline_ms = time_ms + ctx.params.reveal_timeout_ms
    ctx.state.set_round(rnd)
    ctx.emit("updates_sealed", round=rnd.id, committed=committed, reveal_deadline_ms=rnd.reveal_updates_deadline_ms)


def _seal_ballots(ctx: Context, rnd: types_pb2.Round, time_ms: int) -> None:
    """End of VOTE: every ballot commitment is in; too few for a quorum ends the round here."""
    committed = [c.sender for c in rnd.ballot_commitments]
    _slash_silent(ctx, rnd, rnd.voters, committed, "liveness_voter")
    if len(committed) * staking.BPS < ctx.params.quorum_bps * len(rnd.voters):
        _finish(ctx, rnd, types_pb2.OUTCOME_NO_QUORUM, ballots=0)
        return
    rnd.phase = REVEAL_BALLOTS
    rnd.reveal_ballots_deadline_ms = time_ms + ctx.params.reveal_timeout_ms
    ctx.state.set_round(rnd)
    ctx.emit("ballots_sealed", round=rnd.id, committed=committed, reveal_deadline_ms=rnd.reveal_ballots_deadline_ms)


def _close_proposals(ctx: Context, rnd: types_pb2.Round, time_ms: int) -> None:
    _slash_silent(ctx, rnd, [c.sender for c in rnd.update_commitments], rnd.submitted, "unrevealed_update")
    if not rnd.submitted:
        _finish(ctx, rnd, types_pb2.OUTCOME_NO_UPDATES)
        return
    if not ctx.state.model().HasField("ref"):  # by reference, each voter forms the FedAvg itself
        _store_candidate(ctx, rnd)
    rnd.phase, rnd.vote_height = VOTE, ctx.height
    rnd.vote_deadline_ms = time_ms + ctx.params.vote_timeout_ms
    ctx.state.set_round(rnd)
    ctx.emit("candidate_ready", round=rnd.id, contributors=list(rnd.submitted), vote_deadline_ms=rnd.vote_deadline_ms)


def _store_candidate(ctx: Context, rnd: types_pb2.Round) -> None:
    """The FedAvg of every revealed update, which voters compare each leave-one-out aggregate to."""
    updates = [ctx.state.must_update(rnd.id, a) for a in rnd.submitted]
    delta = aggregation.fedavg([(u.num_samples, [tensors.read(t) for t in u.tensors]) for u in updates])
    names = [t.name for t in updates[0].tensors]
    ctx.state.set_candidate(
        types_pb2.Candidate(
            round=rnd.id,
            base_version=rnd.model_version,
            total_samples=sum(u.num_samples for u in updates),
            contributors=list(rnd.submitted),
            delta=[tensors.encode(n, d) for n, d in zip(names, delta)],
        )
    )


def _tally(ctx: Context, rnd: types_pb2.Round, time_ms: int) -> None:
    params = ctx.params
    _slash_silent(
        ctx, rnd, [c.sender for c in rnd.ballot_commitments], [b.voter for b in rnd.ballots], "unrevealed_ballot"
    )
    cast = len(rnd.ballots)
    if cast * staking.BPS < params.quorum_bps * len(rnd.voters):
        _finish(ctx, rnd, types_pb2.OUTCOME_NO_QUORUM, ballots=cast)
        return
    stakes = {b.voter: ctx.state.must_participant(b.voter).stake for b in rnd.ballots}
    updates, voters = judgement.judge(
        list(rnd.submitted),
        list(rnd.ballots),
        stakes,
        params.harm_bps,
        params.condemn_bps,
        params.include_bps,
        params.conflict_bps,
    )
    for verdict in updates:
        _pay_proposer(ctx, rnd.id, verdict)
        fields = dataclasses.asdict(verdict)  # the Verdict message has the very same fields
        rnd.verdicts.append(types_pb2.Verdict(**fields))
        ctx.emit("update_judged", round=rnd.id, **fields)
    for voter in voters:
        _pay_voter(ctx, rnd.id, voter)
    included = [v.proposer for v in updates if v.included]
    if included and ctx.state.model().HasField("ref"):
        rnd.phase = AGGREGATE
        rnd.aggregate_deadline_ms = time_ms + params.aggregate_timeout_ms
        ctx.state.set_round(rnd)
        ctx.emit(
            "aggregation_started",
            round=rnd.id,
            included=included,
            aggregators=_aggregators(rnd),
            aggregate_deadline_ms=rnd.aggregate_deadline_ms,
        )
        return
    if included:
        _apply(ctx, rnd, included)
    outcome = types_pb2.OUTCOME_ACCEPTED if included else types_pb2.OUTCOME_REJECTED
    _finish(ctx, rnd, outcome, **_verdict_counts(rnd))


def _verdict_counts(rnd: types_pb2.Round) -> dict[str, int]:
    return {
        "included": sum(v.included for v in rnd.verdicts),
        "condemned": sum(v.condemned for v in rnd.verdicts),
        "ballots": len(rnd.ballots),
    }


def _adopt_aggregate(ctx: Context, rnd: types_pb2.Round) -> None:
    """End of AGGREGATE: the report (digest, size, norms) made by more than half of the aggregators'
    stake gives the global model and the norms the next bounds are taken from; whoever reported
    another is slashed, and whoever stayed silent is slashed for liveness (the chain cannot read
    the files, so the stake majority vouches for both). With no majority nobody is slashed and the
    model stays: then either the object store failed everyone (the aggregators could not fetch the
    updates or store the model) or the honest stake is too divided to be told from the rest, and
    neither is one party's fault."""
    aggregators = _aggregators(rnd)
    stakes = {a: ctx.state.must_participant(a).stake for a in aggregators}
    winner = majority_report(rnd.aggregate_reports, stakes)
    if winner is None:
        _finish(ctx, rnd, types_pb2.OUTCOME_NOT_AGGREGATED, **_verdict_counts(rnd))
        return
    for report in rnd.aggregate_reports:
        if report_key(report) != winner:
            staking.slash(ctx, report.sender, rnd.id, ctx.params.aggregator_slash_bps, "aggregate_mismatch")
    _slash_silent(ctx, rnd, aggregators, [r.sender for r in rnd.aggregate_reports], "liveness_aggregator")
    digest, size, norms = winner
    _remember_reported_norms(ctx, rnd, norms)
    model = ctx.state.model()
    manifest = [
        types_pb2.TensorSpec(name=t.name, shape=t.shape, dtype=types_pb2.DTYPE_FIXED32) for t in model.ref.manifest
    ]
    ctx.state.set_model(
        types_pb2.GlobalModel(
            version=model.version + 1,
            round=rnd.id,
            ref=types_pb2.BlobRef(digest=digest, size=size, manifest=manifest),
        )
    )
    ctx.emit("aggregate_adopted", round=rnd.id, digest=digest.hex(), size=size, norms=list(norms))
    _finish(ctx, rnd, types_pb2.OUTCOME_ACCEPTED, **_verdict_counts(rnd))


def _remember_reported_norms(ctx: Context, rnd: types_pb2.Round, norms: tuple[int, ...]) -> None:
    """By reference, the included updates' norms (as the adopted report gives them) feed the next
    rounds' bounds, and the aggregators' FedAvg clipped those above this round's bound."""
    history = ctx.state.norm_history()
    included = [v.proposer for v in rnd.verdicts if v.included]
    for proposer, proposed in zip(included, norms):
        norm_bound.remember(history, rnd.id, proposed, ctx.params.norm_window_rounds)
        if norm_bound.exceeds(proposed, rnd.norm_bound):
            ctx.emit("update_clipped", round=rnd.id, proposer=proposer, norm=proposed, bound=rnd.norm_bound)
    ctx.state.set_norm_history(history)


def _pay_proposer(ctx: Context, round_id: int, verdict: judgement.UpdateVerdict) -> None:
    """Slash a condemned update's proposer; pay an included one in proportion to its contribution."""
    params = ctx.params
    if verdict.condemned:
        staking.slash(ctx, verdict.proposer, round_id, params.proposer_slash_bps, "update_condemned")
    elif verdict.included and verdict.contribution_bps > 0:
        credit = min(verdict.contribution_bps, params.full_credit_bps)
        bps = params.proposer_reward_bps * credit // max(1, params.full_credit_bps)
        staking.reward(ctx, verdict.proposer, round_id, bps, "update_included")


def _pay_voter(ctx: Context, round_id: int, verdict: judgement.VoterVerdict) -> None:
    """Reward agreement, charge contradiction, each in proportion to the round's verdicts: evidence
    that reverses the consensus costs stake every round, evidence that does not see an update's
    effect (unusual data) costs nothing, and a voter whose record is mostly agreement pays less for
    a contradiction (voter_record, as it stood before this ballot joined it)."""
    params = ctx.params
    voter = ctx.state.must_participant(verdict.voter)
    factor = voter_record.charge_factor_bps(voter)
    voter_record.add_ballot(voter, verdict.agreement_bps, verdict.contradiction_bps)
    ctx.state.set_participant(voter)  # before the pay, which reads the participant back
    charge = params.voter_slash_bps * verdict.contradiction_bps * factor // staking.BPS
    net = (params.voter_reward_bps * verdict.agreement_bps - charge) // staking.BPS
    if net > 0:
        staking.reward(ctx, verdict.voter, round_id, net, "voter_agreed")
    elif net < 0:
        staking.slash(ctx, verdict.voter, round_id, -net, "voter_contradicted")


def _apply(ctx: Context, rnd: types_pb2.Round, included: list[bytes]) -> None:
    """The global model moves by the FedAvg of the included updates, each scaled down to the
    round's norm bound if it exceeds it. Voters judged the updates as sent, so a proposer answers
    for its whole step; the bound only limits how far one step can move the model."""
    weighted = []
    for update in (ctx.state.must_update(rnd.id, a) for a in included):
        values = [tensors.read(t) for t in update.tensors]
        if norm_bound.exceeds(update.norm, rnd.norm_bound):
            values = norm_bound.clip(values, update.norm, rnd.norm_bound)
            ctx.emit("update_clipped", round=rnd.id, proposer=update.proposer, norm=update.norm, bound=rnd.norm_bound)
        weighted.append((update.num_samples, values))
    delta = aggregation.fedavg(weighted)
    model = ctx.state.model()
    new = aggregation.apply_delta([tensors.read(t) for t in model.tensors], delta)
    ctx.state.set_model(
        types_pb2.GlobalModel(
            version=model.version + 1,
            round=rnd.id,
            tensors=[tensors.encode(t.name, v) for t, v in zip(model.tensors, new)],
        )
    )


def outcome_name(outcome: int) -> str:
    """OUTCOME_ACCEPTED -> "accepted" (events, reports)."""
    return types_pb2.Outcome.Name(outcome).removeprefix("OUTCOME_").lower()


def _finish(ctx: Context, rnd: types_pb2.Round, outcome: types_pb2.Outcome, **counts: int) -> None:
    """Archive the round and open the next one (a new draw, whatever the outcome)."""
    rnd.phase, rnd.outcome = TALLY, outcome
    ctx.state.archive_round(rnd)
    ctx.state.delete_updates(rnd.id)
    ctx.state.set_candidate(None)
    version = ctx.state.model().version
    ctx.state.set_round(open_round(rnd.id + 1, ctx.height, version))  # drawn at this block's end if it can be
    ctx.emit(
        "round_finished",
        round=rnd.id,
        outcome=outcome_name(outcome),
        model_version=version,
        **counts,
    )
