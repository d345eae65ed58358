"""The AGGREGATE phase of a model by reference: the chain cannot read the files, so the voters
whose ballots counted compute the new model (aggregation.next_model: the FedAvg of the included
updates, each clipped to the round's norm bound, plus the server momentum), store it, and report
its digest and the included norms; the report made by most of them, holding most of their stake,
becomes the global model, and its norms feed the next rounds' bounds."""

from abci_app import norm_bound, staking
from abci_app.codes import Code, TxError
from abci_app.context import Context
from abci_app.messages import ReportAggregate
from abci_app.phases import AGGREGATE, require_phase
from abci_app.round_close import finish, slash_silent, verdict_counts
from flchain.v1 import types_pb2

ReportKey = tuple[bytes, int, tuple[int, ...]]


def aggregators(rnd: types_pb2.Round) -> list[bytes]:
    return [b.voter for b in rnd.ballots]


def start(ctx: Context, rnd: types_pb2.Round, included: list[bytes], time_ms: int) -> None:
    """After the tally: the included updates are known, the aggregators may compute their FedAvg."""
    rnd.phase = AGGREGATE
    rnd.aggregate_deadline_ms = time_ms + ctx.params.aggregate_timeout_ms
    ctx.state.set_round(rnd)
    ctx.emit(
        "aggregation_started",
        round=rnd.id,
        included=included,
        aggregators=aggregators(rnd),
        aggregate_deadline_ms=rnd.aggregate_deadline_ms,
    )


def report_aggregate(ctx: Context, sender: bytes, msg: ReportAggregate) -> None:
    rnd = ctx.state.round()
    require_phase(rnd, AGGREGATE, msg.round)
    if sender not in aggregators(rnd):
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


def report_key(report: types_pb2.AggregateReport) -> ReportKey:
    """What aggregators must agree on: the new model's file (digest, size) and the included norms."""
    return report.digest, report.size, tuple(report.norms)


def majority_report(reports, stakes: dict[bytes, int]) -> ReportKey | None:
    """The report (digest, size, norms) made by more than half of the aggregators' stake and by more
    than half of the aggregators (all of them, the silent included), or None. At most one can be:
    two would hold more than the whole. Stake alone would let one aggregator decide a small
    committee: of two, the richer one, liar or not, and a lie adopted is a model nobody can fetch.
    The draw picks aggregators regardless of stake, so their head count matters as much."""
    support: dict[ReportKey, tuple[int, int]] = {}
    for report in reports:
        key = report_key(report)
        stake, heads = support.get(key, (0, 0))
        support[key] = (stake + stakes[report.sender], heads + 1)
    total = sum(stakes.values())
    return next(
        (key for key, (stake, heads) in support.items() if 2 * stake > total and 2 * heads > len(stakes)),
        None,
    )


def all_reported(rnd: types_pb2.Round) -> bool:
    return len(rnd.aggregate_reports) == len(rnd.ballots)


def adopt(ctx: Context, rnd: types_pb2.Round) -> None:
    """End of AGGREGATE: the report (digest, size, norms) made by more than half of the aggregators,
    holding more than half of their stake, gives the global model and the norms the next bounds
    are taken from; whoever reported another is slashed, and whoever stayed silent is slashed for
    liveness (the chain cannot read the files, so the majority vouches for both). With no majority
    nobody is slashed and the model stays: then either the object store failed everyone (the
    aggregators could not fetch the updates or store the model) or the honest aggregators are too
    few to be told from the rest, and neither is one party's fault."""
    drawn = aggregators(rnd)
    stakes = {a: ctx.state.must_participant(a).stake for a in drawn}
    winner = majority_report(rnd.aggregate_reports, stakes)
    if winner is None:
        finish(ctx, rnd, types_pb2.OUTCOME_NOT_AGGREGATED, **verdict_counts(rnd))
        return
    for report in rnd.aggregate_reports:
        if report_key(report) != winner:
            staking.slash(ctx, report.sender, rnd.id, ctx.params.aggregator_slash_bps, "aggregate_mismatch")
    slash_silent(ctx, rnd, drawn, [r.sender for r in rnd.aggregate_reports], "liveness_aggregator")
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
            previous=model.ref,  # the step (server momentum) is the new file minus this one
        )
    )
    ctx.emit("aggregate_adopted", round=rnd.id, digest=digest.hex(), size=size, norms=list(norms))
    finish(ctx, rnd, types_pb2.OUTCOME_ACCEPTED, **verdict_counts(rnd))


def _remember_reported_norms(ctx: Context, rnd: types_pb2.Round, norms: tuple[int, ...]) -> None:
    """The included updates' norms (as the adopted report gives them) feed the next rounds' bounds,
    and the aggregators' FedAvg clipped those above this round's bound."""
    history = ctx.state.norm_history()
    included = [v.proposer for v in rnd.verdicts if v.included]
    for proposer, proposed in zip(included, norms):
        norm_bound.remember(history, rnd.id, proposed, ctx.params.norm_window_rounds)
        if norm_bound.exceeds(proposed, rnd.norm_bound):
            ctx.emit("update_clipped", round=rnd.id, proposer=proposer, norm=proposed, bound=rnd.norm_bound)
    ctx.state.set_norm_history(history)
