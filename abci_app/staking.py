"""Bonding, unbonding, rewards, slashing and removal below the stake threshold."""

from abci_app.codes import Code, TxError
from abci_app.context import Context
from abci_app.messages import Bond, Unbond
from abci_app.units import BPS
from flchain.v1 import types_pb2

BONDED = types_pb2.PARTICIPANT_STATUS_BONDED
REMOVED = types_pb2.PARTICIPANT_STATUS_REMOVED


def share(stake: int, bps: int) -> int:
    return stake * bps // BPS


def _record(ctx: Context, p: types_pb2.Participant, round_id: int, kind: str, reason: str, amount: int) -> None:
    ctx.state.record_event(
        p,
        types_pb2.ParticipantEvent(
            height=ctx.height, round=round_id, kind=kind, reason=reason, amount=amount, stake_after=p.stake
        ),
    )
    ctx.emit(kind, address=p.address, round=round_id, reason=reason, amount=amount, stake=p.stake)


def bond(ctx: Context, sender: bytes, msg: Bond) -> None:
    account = ctx.state.must_account(sender)  # the tx checks found it
    if account.balance < msg.amount:
        raise TxError(Code.INSUFFICIENT_BALANCE, f"balance {account.balance} is below the bond {msg.amount}")
    p = ctx.state.participant(sender)
    if p is None or p.status != BONDED:
        if msg.amount < ctx.params.min_stake:
            raise TxError(
                Code.BOND_BELOW_THRESHOLD,
                f"a new participant must bond at least {ctx.params.min_stake}, got {msg.amount}",
            )
        p = p or types_pb2.Participant(address=sender)
        p.status, p.bonded_height = BONDED, ctx.height
        # Join the draw's current pass: with no turns it would propose every round until level.
        p.proposer_turns = min((q.proposer_turns for q in ctx.state.participants() if q.status == BONDED), default=0)
    account.balance -= msg.amount
    p.stake += msg.amount
    ctx.state.set_account(account)
    _record(ctx, p, ctx.state.round().id, "bonded", "bond", msg.amount)
    ctx.state.set_participant(p)


def unbond(ctx: Context, sender: bytes, msg: Unbond) -> None:
    p = ctx.state.participant(sender)
    if p is None or p.status != BONDED:
        raise TxError(Code.NOT_BONDED, "sender is not a bonded participant")
    if msg.amount > p.stake:
        raise TxError(Code.INVALID_AMOUNT, f"unbond amount must be in 1..{p.stake}, got {msg.amount}")
    remaining = p.stake - msg.amount
    if 0 < remaining < ctx.params.min_stake:
        raise TxError(
            Code.UNBOND_LEAVES_TOO_LITTLE, f"{remaining} would stay bonded; leave 0 or at least {ctx.params.min_stake}"
        )
    rnd = ctx.state.round()
    if rnd.phase not in (types_pb2.PHASE_SELECT, types_pb2.PHASE_TALLY) and (
        sender in rnd.proposers or sender in rnd.voters
    ):
        raise TxError(Code.ROLE_LOCKED, f"sender serves in round {rnd.id}; unbond after its tally")
    p.stake = remaining
    ctx.state.add_unbonding(sender, msg.amount, ctx.height + ctx.params.unbonding_blocks)
    _record(ctx, p, rnd.id, "unbonded", "unbond", msg.amount)
    if remaining == 0:
        p.status = REMOVED
        _record(ctx, p, rnd.id, "removed", "unbonded_all", 0)
    ctx.state.set_participant(p)


def reward(ctx: Context, address: bytes, round_id: int, bps: int, reason: str) -> None:
    """Mint bps of the participant's stake onto it."""
    p = ctx.state.must_participant(address)
    amount = share(p.stake, bps)
    if p.status != BONDED or amount == 0:
        return
    p.stake += amount
    p.total_rewarded += amount
    _record(ctx, p, round_id, "rewarded", reason, amount)
    ctx.state.set_participant(p)


def slash(ctx: Context, address: bytes, round_id: int, bps: int, reason: str) -> None:
    """Burn bps of the participant's stake; below the threshold it is removed and the rest unbonds."""
    p = ctx.state.must_participant(address)
    amount = share(p.stake, min(bps, BPS))  # a charge scaled up (a liar's record) takes at most all
    if p.status != BONDED or amount == 0:
        return
    p.stake -= amount
    p.total_slashed += amount
    _record(ctx, p, round_id, "slashed", reason, amount)
    if p.stake < ctx.params.min_stake:
        if p.stake:
            ctx.state.add_unbonding(address, p.stake, ctx.height + ctx.params.unbonding_blocks)
        leftover, p.stake, p.status = p.stake, 0, REMOVED
        _record(ctx, p, round_id, "removed", "below_threshold", leftover)
    ctx.state.set_participant(p)


def release_matured_unbondings(ctx: Context) -> None:
    """Return to balances the unbonded stake whose completion height has come."""
    for key, entry in list(ctx.state.unbondings()):
        if entry.completion_height > ctx.height:
            break  # keys sort by completion height
        account = ctx.state.must_account(entry.address)
        account.balance += entry.amount
        ctx.state.set_account(account)
        ctx.state.kv.delete(key)
        ctx.emit("unbonding_completed", address=entry.address, amount=entry.amount)
