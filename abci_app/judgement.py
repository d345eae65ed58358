"""Judging each update on the voters' evidence: which updates join the round's FedAvg, which
proposers are condemned, how much each contributed, and how far each voter agreed.

A voter reports, for every update, how much its held-out loss rises when that update is left out
of the round's FedAvg (leave-one-out), next to its loss with every update. The chain reads each
score relative to that voter's own loss, so voters whose data are easy or hard, or skewed (non-IID),
weigh alike, and every threshold scales with the model's current loss. Votes are weighted by stake,
less for a voter whose record is mostly contradiction (voter_record.ballot_weight):
  contribution  the stake-weighted median relative score
  harmful   a voter's relative score is below -harm_bps (leaving the update out helps it clearly)
  included  less than two thirds of the voting stake finds the update harmful, and the median
            voter's loss rises by at most exclude_bps with it (contribution >= -exclude_bps). An
            honest update from one-sided (non-IID) data helps the voters who share its data, often
            a third of the stake or more, and raises the others' loss modestly: most voters' own
            data would do without it, but the federation needs it. A poisoned update harms the
            honest voters more: it is left out while they hold two thirds of the stake, or when
            its median harm passes exclude_bps.
  condemned at least two thirds of the voting stake finds it harmful and the contribution is below
            -condemn_bps (clear harm, beyond what an honest update from one-sided data does: those
            harmed the median voter by up to 40% in the parameter study's probe) while two thirds
            of the stake find it harmful beyond half of that, or the contribution is below
            three times the voters' spread on it (their scores' stake-weighted interquartile
            range): its proposer is slashed. Voters with skewed (non-IID) data disagree widely
            about an honest update from one-sided data (those who share its data gain, the others
            lose), so a modest median harm stays within a few spreads; a poisoned update harms every
            voter alike, so even a modest harm, as from a sign flip at an honest update's size,
            stands far outside. (Two thirds finding it harmful already put the median past
            -harm_bps.) The spread alone condemns only an update that does not point where the
            round's other updates point (the voters' median alignment, the cosine between it and
            the FedAvg of the others, is below aligned_bps): near convergence an honest update that
            overfits its shard can harm every voter alike, yet it still points with the others,
            while a sign flip points against them. Beyond condemn_bps, direction is no excuse.
            The second bar on the size of the harm is one a coalition short of two thirds cannot
            set: at 45% colluders hold the median of a round none of them proposes in, and claim
            what harm they like; with the few honest voters who lack an honest update's data (and
            find it harmful by 5-30%) they reached two thirds "harmful" and condemned it, removing
            6 honest participants over three seeds (twenty-fifth round of the parameter study).
            An update left alone because its drawn round-mates never revealed (free riders whose
            zeros the chain refused, say) has nothing to point with or away from, so the spread
            alone never condemns it: near convergence such a lone honest update harmed every voter
            by 33-38% and was condemned twice, removing its proposer. A round drawn with one
            proposer (a federation under 14 members) is judged as before: there every update is
            alone, and the spread is the only evidence short of condemn_bps (twenty-fifth round).
Voters are charged against the evidence's consensus on each update (abci_app/settlement.py):
harmful when the update is left out or when at least half of the voting stake finds it harmful
(although it joined), helpful otherwise. A voter agrees when its evidence clearly says the same
(beyond harm_bps either way), and contradicts when its evidence clearly says the opposite of a
consensus that two thirds of the voting stake back: only that is charged. A voter with unusual
(non-IID) data that does not see an update's effect, or that differs on a close call, does not
contradict; a liar who reverses its evidence against a clear consensus does. A voter disputes a
helpful verdict that only the median voter backs (it finds the update helpful beyond harm_bps,
short of two thirds) when its evidence clearly says the opposite. Disputes go on the voter's record
apart (abci_app/voter_record.py) and weigh its say only, not its stake. They matter when liars hold
a third of the stake or more: the liars alone then keep every helpful verdict short of two thirds,
so trashing honest updates never cost them their say, while the median stays on the honest side
as long as they hold less than half (twenty-second round of the parameter study). Charged as
contradictions, disputes also removed honest voters whose data differ from the median's (4 more
cells missing the honest-removal bound on each seed set). A harmful verdict only the median backs
is not read at all: on non-IID data liars and the honest voters who lack an honest update's data
can pull the median below -harm_bps, and the honest voters who found that update helpful would
then lose their say to the liars.
The round's updates are also judged together (round_gain): leave-one-out judges each update against
its peers, so when most of a round's updates push the same wrong way (two or three sign flips among
three proposers), each looks like its peers, scores about zero and joins. Each ballot therefore also
carries the voter's loss where the round's step starts, before any update; a voter's gain is the
relative improvement from there to its loss with every update. The round is harmful when the
stake-weighted median gain is below -harm_bps and below -SPREAD_MARGIN times the voters' spread on
it. Honest voters on IID data agree closely on how a round moves their loss (in a probe of IID 45%
sign flips, every round with an attacker's update harmed the median honest voter, by up to 72%,
and the middle half of the honest voters' gains spanned 0.4 to 6 points); on non-IID data they
disagree widely, since one-sided updates help the voters who share their classes and harm the
others (honest Dirichlet 0.1 rounds: a median gain of -14% is common, down to -50%, but with a
spread as wide), so a bar on the median alone would reject honest non-IID rounds. The spread is
twice the narrower half of the voters' middle half around the median: voters with less than half
of the stake can widen one half but not both, so liars cannot hide a harmful round behind a wide
spread. A harmful round leaves out every update but those the ballots find
clearly helpful (contribution above harm_bps: in a round of two sign flips and one honest update,
leaving the honest one out leaves only the flips, and every voter sees it). Nobody is slashed or
charged for it: the evidence says that the round harms, not which update (twenty-fourth round of
the parameter study).
Everything is integer arithmetic: the same on every validator.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from abci_app.units import BPS
from flchain.v1 import types_pb2

RELATIVE_CAP = 100 * BPS  # a relative score beyond +-100x the voter's loss says nothing more
# A harm below condemn_bps condemns when it exceeds this many times the voters' spread on it. In the
# parameter study's probe (eleventh round) sign and label flips on IID data harmed by 1.6 to 8.8
# times their spread, honest updates harmful to most voters on Dirichlet 0.5 and 0.1 data by 1.0 to
# 1.9 times, one from a shard of mostly one class by 2.8: a margin of 2 removed that participant in
# 3 cells of the matrix, 3 in none.
SPREAD_MARGIN = 3


@dataclass(frozen=True)
class Bars:
    """The chain params that judge: the Params fields of the same names (proto/flchain/v1/types.proto)."""

    harm_bps: int
    condemn_bps: int
    include_bps: int
    exclude_bps: int
    aligned_bps: int

    @classmethod
    def of(cls, params: types_pb2.Params) -> "Bars":
        return cls(*(getattr(params, f.name) for f in fields(cls)))


@dataclass(frozen=True)
class UpdateVerdict:
    proposer: bytes
    included: bool
    condemned: bool
    harmful_bps: int  # share of the voting stake that found it harmful
    contribution_bps: int  # stake-weighted median relative improvement (positive: it helps)
    alignment_bps: int  # stake-weighted median alignment with the others (a ballot without any: -BPS)
    two_thirds_bps: int  # the relative score two thirds of the voting stake reach or fall below
    copy_of: bytes = b""  # set by the copy rule (abci_app/copies.py), not by the ballots
    copy_of_round: int = 0
    left_out_with_round: bool = False  # the ballots let it in, but the round's updates together harm


@dataclass(frozen=True)
class RoundGain:
    """The round's updates taken together (the RoundGain message has the same fields)."""

    gain_bps: int  # stake-weighted median relative improvement from the start to every update
    spread_bps: int  # twice the narrower half of the middle half around that median
    harmful: bool


@dataclass(frozen=True)
class VoterVerdict:
    voter: bytes
    agreement_bps: int  # share of the round's updates on which its evidence agrees with the consensus
    contradiction_bps: int  # share on which it clearly contradicts a consensus two thirds back (charged)
    disputed_bps: int  # share on which it clearly contradicts a helpful verdict only the median backs


def relative_bps(score: int, loss: int) -> int:
    """A score as a share of the voter's loss, in basis points (floor division: exact, deterministic)."""
    return max(-RELATIVE_CAP, min(RELATIVE_CAP, score * BPS // max(1, loss)))


def weighted_quantile(values: Sequence[tuple[int, int]], share_bps: int) -> int:
    """The least value of (value, weight) pairs at which the cumulative weight reaches share_bps of
    the total; ties in value keep input order."""
    ordered = sorted(values, key=lambda vw: vw[0])
    total = sum(w for _, w in ordered)
    seen = 0
    for value, weight in ordered:
        seen += weight
        if seen * BPS >= share_bps * total:
            return value
    raise ValueError("weighted_quantile of nothing")


def weighted_median(values: Sequence[tuple[int, int]]) -> int:
    """The lower stake-weighted median of (value, weight) pairs."""
    return weighted_quantile(values, BPS // 2)


def weighted_spread(values: Sequence[tuple[int, int]]) -> int:
    """The stake-weighted interquartile range: how far the middle half of the stake disagrees."""
    return weighted_quantile(values, 3 * BPS // 4) - weighted_quantile(values, BPS // 4)


def _weights(ballots: Sequence[types_pb2.Ballot], ballot_weights: Mapping[bytes, int]) -> list[int]:
    """What each ballot weighs: what ballot_weights gives its voter, and at least 1 so that a round
    whose voters were all slashed to nothing, or all lost their say by their records, still decides."""
    return [max(1, ballot_weights.get(b.voter, 0)) for b in ballots]


def round_gain(ballots: Sequence[types_pb2.Ballot], ballot_weights: Mapping[bytes, int], bars: Bars) -> RoundGain:
    """Whether the round's updates, taken together, clearly harm the voters (see the module's doc)."""
    gains = [
        (relative_bps(b.start_loss - b.loss, b.loss), w) for b, w in zip(ballots, _weights(ballots, ballot_weights))
    ]
    median = weighted_median(gains)
    lower = median - weighted_quantile(gains, BPS // 4)
    upper = weighted_quantile(gains, 3 * BPS // 4) - median
    spread = 2 * min(lower, upper)
    return RoundGain(median, spread, median < -bars.harm_bps and median < -SPREAD_MARGIN * spread)


def judge(
    submitted: Sequence[bytes],
    ballots: Sequence[types_pb2.Ballot],
    ballot_weights: Mapping[bytes, int],
    bars: Bars,
    gain: RoundGain | None = None,
    drawn: int = 0,
) -> tuple[list[UpdateVerdict], list[VoterVerdict]]:
    """Verdicts on every submitted update and on every voter who cast a ballot.

    Ballots carry one score per submitted update (the chain refused any other); a ballot weighs as
    _weights says. A harmful gain (round_gain) leaves out the updates that do not clearly help;
    what the voters are charged against stays the ballots' verdict on each update. drawn is how many
    proposers the round seated (0: as many as submitted)."""
    # alone only because its round-mates never revealed: it has no direction to be judged by
    deserted = len(submitted) == 1 and drawn > 1
    harm_bps = bars.harm_bps
    weights = _weights(ballots, ballot_weights)
    total = sum(weights)
    relative = [[relative_bps(s, b.loss) for s in b.scores] for b in ballots]
    harmful = [[r < -harm_bps for r in row] for row in relative]

    per_update = [[(row[i], w) for row, w in zip(relative, weights)] for i in range(len(submitted))]
    contributions = [weighted_median(scores) for scores in per_update]
    alignments = [
        weighted_median([(b.alignments[i] if b.alignments else -BPS, w) for b, w in zip(ballots, weights)])
        for i in range(len(submitted))
    ]
    updates, backed, median_backed, found_harmful = [], [], [], []
    for i, proposer in enumerate(submitted):
        harmful_stake = sum(w for w, row in zip(weights, harmful) if row[i])
        helpful_stake = sum(w for w, row in zip(weights, relative) if row[i] >= bars.include_bps)
        contribution, alignment = contributions[i], alignments[i]
        pointed_away = alignment < bars.aligned_bps and not deserted
        beyond_spread = contribution < -SPREAD_MARGIN * weighted_spread(per_update[i]) and pointed_away
        # the score two thirds of the voting stake reach: a coalition short of two thirds cannot set it
        two_thirds = weighted_quantile(per_update[i], 2 * BPS // 3)
        beyond_condemn = contribution < -bars.condemn_bps and two_thirds < -bars.condemn_bps // 2
        included = 3 * harmful_stake < 2 * total and contribution >= -bars.exclude_bps
        with_round = included and gain is not None and gain.harmful and contribution <= harm_bps
        harmful_consensus = not included or 2 * harmful_stake >= total
        found_harmful.append(harmful_consensus)
        # two thirds of the stake back the consensus: contradicting it is not a matter of unusual data
        backed.append(3 * (helpful_stake if harmful_consensus else harmful_stake) <= total)
        median_backed.append(not harmful_consensus and contribution > harm_bps)
        updates.append(
            UpdateVerdict(
                proposer=proposer,
                included=included and not with_round,
                condemned=3 * harmful_stake >= 2 * total and (beyond_condemn or beyond_spread),
                harmful_bps=harmful_stake * BPS // total,
                contribution_bps=contribution,
                alignment_bps=alignment,
                two_thirds_bps=two_thirds,
                left_out_with_round=with_round,
            )
        )

    voters = []
    count = max(1, len(updates))
    for ballot, scores in zip(ballots, relative):
        # decisive evidence only: a score within +-harm_bps neither agrees nor contradicts
        agree = sum(r < -harm_bps if bad else r > harm_bps for r, bad in zip(scores, found_harmful))
        opposed = [r > harm_bps if bad else r < -harm_bps for r, bad in zip(scores, found_harmful)]
        against = sum(o and b for o, b in zip(opposed, backed))
        disputed = sum(o and m and not b for o, b, m in zip(opposed, backed, median_backed))
        voters.append(VoterVerdict(ballot.voter, agree * BPS // count, against * BPS // count, disputed * BPS // count))
    return updates, voters
