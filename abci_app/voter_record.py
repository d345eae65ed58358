"""A voter's record across rounds, so that a contradiction costs an honest voter with unusual data
less than a liar.

An honest voter whose held-out data are one-sided (non-IID) now and then measures the opposite of a
clear verdict; a voter that reverses its evidence does so in most rounds and agrees with little.
Each ballot adds its shares of agreeing and contradicting evidence to the voter's record, and the
charge for a contradiction is scaled by the record's contradicting share: in full while at least
half of the voter's decisive evidence contradicted the verdicts (a liar, and every newcomer),
falling to nothing for a voter whose evidence has always agreed. Rewards are not scaled.
Integer arithmetic only: the same on every validator.
"""

from flchain.v1 import types_pb2

BPS = 10_000
PRIOR_BPS = BPS // 2  # half a ballot of each: a newcomer's contradicting share is one half


def contradicting_share_bps(participant: types_pb2.Participant) -> int:
    """The share of the voter's decisive evidence that contradicted the verdicts, prior included."""
    agreed, contradicted = participant.evidence_agreed_bps, participant.evidence_contradicted_bps
    return (PRIOR_BPS + contradicted) * BPS // (2 * PRIOR_BPS + agreed + contradicted)


def charge_factor_bps(participant: types_pb2.Participant) -> int:
    """How much of a contradiction's charge the voter pays: all of it at a contradicting share of one
    half or more, in proportion below."""
    return min(BPS, 2 * contradicting_share_bps(participant))


def add_ballot(participant: types_pb2.Participant, agreement_bps: int, contradiction_bps: int) -> None:
    participant.evidence_agreed_bps += agreement_bps
    participant.evidence_contradicted_bps += contradiction_bps
