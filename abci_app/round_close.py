"""Ending a phase or a round: liveness slashes for the drawn parties who stayed silent, and the
round archived with its outcome while the next one opens."""

from abci_app import staking
from abci_app.context import Context
from abci_app.phases import TALLY, open_round, outcome_name
from flchain.v1 import types_pb2


def slash_silent(ctx: Context, rnd: types_pb2.Round, drawn, acted, reason: str) -> None:
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


def verdict_counts(rnd: types_pb2.Round) -> dict[str, int]:
    return {
        "included": sum(v.included for v in rnd.verdicts),
        "condemned": sum(v.condemned for v in rnd.verdicts),
        "ballots": len(rnd.ballots),
    }


def finish(ctx: Context, rnd: types_pb2.Round, outcome: types_pb2.Outcome, **counts: int) -> None:
    """Archive the round and open the next one (a new draw, whatever the outcome)."""
    rnd.phase, rnd.outcome = TALLY, outcome
    ctx.state.archive_round(rnd)
    # the copy rule's window: the next round compares its updates with this one's and those before
    ctx.state.forget_fingerprints_before(rnd.id + 1 - min(rnd.id + 1, ctx.params.copy_window_rounds))
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
