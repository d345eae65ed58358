"""Paying a round's verdicts: proposers in proportion to their update's contribution; voters are
charged for contradicting the verdicts, less what their agreement offsets, and never paid."""

from abci_app import judgement, staking, voter_record
from abci_app.context import Context
from abci_app.units import BPS


def pay_proposer(ctx: Context, round_id: int, verdict: judgement.UpdateVerdict) -> None:
    """Slash a condemned update's proposer (a copy's too, under its own reason); pay an included one
    in proportion to its contribution."""
    params = ctx.params
    if verdict.condemned:
        reason = "update_copied" if verdict.copy_of else "update_condemned"
        staking.slash(ctx, verdict.proposer, round_id, params.proposer_slash_bps, reason)
    elif verdict.included and verdict.contribution_bps > 0:
        credit = min(verdict.contribution_bps, params.full_credit_bps)
        bps = params.proposer_reward_bps * credit // max(1, params.full_credit_bps)
        staking.reward(ctx, verdict.proposer, round_id, bps, "update_included")


def pay_voter(ctx: Context, round_id: int, verdict: judgement.VoterVerdict) -> None:
    """Charge contradiction, offset by agreement in the same round, and pay nothing beyond: a ballot
    copied from an earlier round agrees with a consensus of mostly helpful updates as well as a
    measured one, so any pay for agreement paid copiers too (they earned in every copier cell of
    the matrix; seventeenth round of the study). Evidence that reverses the consensus costs stake
    every round, evidence that does not see an update's effect (unusual data) costs nothing, and a
    voter whose record is mostly agreement pays less for a contradiction (voter_record, as it
    stood before this ballot joined it). Helpful verdicts that only the median backs, short of two
    thirds, go on the record apart (judgement.VoterVerdict.disputed_bps): they weigh the voter's
    say, not its stake, nor what it pays for a contradiction."""
    params = ctx.params
    voter = ctx.state.must_participant(verdict.voter)
    factor = voter_record.charge_factor_bps(voter)
    voter_record.add_ballot(voter, verdict.agreement_bps, verdict.contradiction_bps, verdict.disputed_bps)
    ctx.state.set_participant(voter)  # before the charge, which reads the participant back
    charge = params.voter_slash_bps * verdict.contradiction_bps * factor // BPS
    net = (params.voter_reward_bps * verdict.agreement_bps - charge) // BPS
    if net < 0:  # agreement offsets the charge and earns nothing beyond it
        staking.slash(ctx, verdict.voter, round_id, -net, "voter_contradicted")
