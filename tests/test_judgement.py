"""The judgement rule on its own: relative scores, stake-weighted medians, verdicts, and its invariants."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from abci_app import judgement
from abci_app.units import BPS
from flchain.v1 import types_pb2

BARS = judgement.Bars(harm_bps=500, condemn_bps=2_000, include_bps=50, exclude_bps=1_000, aligned_bps=500)
P = [bytes([i]) * 20 for i in range(3)]


def ballots(*rows, loss=10_000, alignments=()):
    return [
        types_pb2.Ballot(voter=bytes([100 + v]) * 20, loss=loss, scores=row, alignments=alignments)
        for v, row in enumerate(rows)
    ]


def test_relative_scores_floor_and_saturate():
    assert judgement.relative_bps(500, 10_000) == 500
    assert judgement.relative_bps(-1, 3) == -3_334  # floor, the same on every machine
    assert judgement.relative_bps(10**9, 1) == judgement.RELATIVE_CAP
    assert judgement.relative_bps(5, 0) == 50_000  # a zero loss is read as the smallest one


def test_weighted_median_follows_stake():
    assert judgement.weighted_median([(1, 1), (2, 1), (3, 1)]) == 2
    assert judgement.weighted_median([(1, 1), (2, 1)]) == 1  # the lower median
    assert judgement.weighted_median([(1, 10), (2, 1), (3, 1)]) == 1


def test_weighted_quantiles_and_spread_follow_stake():
    values = [(-3_000, 1), (-2_000, 1), (-800, 1), (-700, 1), (-600, 1), (2_000, 1)]
    assert judgement.weighted_quantile(values, 2_500) == -2_000
    assert judgement.weighted_quantile(values, 7_500) == -600
    assert judgement.weighted_spread(values) == 1_400
    assert judgement.weighted_spread([(5, 1), (7, 100), (9, 1)]) == 0  # the middle half of the stake agrees
    assert judgement.weighted_spread([(-50, 3), (10, 1), (90, 3)]) == 140


def gained(*gains_bps, loss=10_000):
    """One ballot per voter whose loss fell by that share of `loss` from the start (negative: rose)."""
    return [
        types_pb2.Ballot(voter=bytes([100 + v]) * 20, loss=loss, start_loss=loss + loss * g // BPS, scores=[0])
        for v, g in enumerate(gains_bps)
    ]


def test_a_round_every_voter_finds_harmful_alike_is_harmful():
    # IID voters under a round of sign flips: every loss rises 10-12% from the start
    gain = judgement.round_gain(gained(-1_200, -1_150, -1_100, -1_050, -1_000), {}, BARS)
    assert gain == judgement.RoundGain(gain_bps=-1_100, spread_bps=100, harmful=True)
    # a harm under harm_bps is not read, however alike; nor is a round that helps
    assert not judgement.round_gain(gained(-400, -410, -420), {}, BARS).harmful
    assert not judgement.round_gain(gained(1_000, 1_100, 1_200), {}, BARS).harmful


def test_a_round_voters_disagree_on_is_not_harmful():
    # non-IID voters under an honest round of one-sided updates: those who share their classes gain,
    # the others lose; the median loses 14%, within three spreads of what the voters disagree by
    gain = judgement.round_gain(gained(-5_000, -2_500, -1_400, 1_000, 4_000), {}, BARS)
    assert (gain.gain_bps, gain.spread_bps, gain.harmful) == (-1_400, 2_200, False)


def test_voters_with_less_than_half_the_stake_cannot_hide_a_harmful_round():
    honest = [-1_100, -1_050, -1_000]
    for lies in ([3_000, 3_100], [-9_000, 9_000]):  # all on one side, or one on each
        gain = judgement.round_gain(gained(*honest, *lies), {}, BARS)
        assert gain.harmful and gain.spread_bps == 100
    # the interquartile range would have: three spreads of it reach past the median
    gains = [(g, 1) for g in [*honest, 3_000, 3_100]]
    assert judgement.weighted_median(gains) > -judgement.SPREAD_MARGIN * judgement.weighted_spread(gains)
    # with half of the stake or more, liars hold the median itself
    assert not judgement.round_gain(
        gained(*honest, 3_000, 3_100), {bytes([103]) * 20: 5, bytes([104]) * 20: 5}, BARS
    ).harmful


def test_a_harmful_round_keeps_only_what_clearly_helps_and_charges_as_the_ballots_say():
    # leave-one-out: update 0 clearly helps, update 1 about nothing (it looks like its peer), update
    # 2 harms a little; all three join on the ballots alone
    rows = [[900, 100, -200], [800, 100, -200], [800, 600, -200], [700, 100, -200], [900, 100, -200]]
    plain, plain_voters = judgement.judge(P, ballots(*rows), {}, BARS)
    assert [u.included for u in plain] == [True, True, True]
    harmful = judgement.RoundGain(gain_bps=-1_100, spread_bps=100, harmful=True)
    updates, voters = judgement.judge(P, ballots(*rows), {}, BARS, harmful)
    assert [(u.included, u.condemned, u.left_out_with_round) for u in updates] == [
        (True, False, False),
        (False, False, True),
        (False, False, True),
    ]
    assert [replace(u, included=True, left_out_with_round=False) for u in updates] == plain
    assert voters == plain_voters  # a voter that found update 1 helpful is not charged for the round
    calm = replace(harmful, harmful=False)
    assert judgement.judge(P, ballots(*rows), {}, BARS, calm) == (plain, plain_voters)


def test_a_modest_harm_every_voter_sees_condemns_and_one_voters_disagree_on_does_not():
    # Each update raises the median voter's loss by 9%, below condemn_bps. Update 0 harms every voter
    # alike (spread 2.5%: the harm is 3.6 spreads), a poisoned update at an honest update's size;
    # update 1 harms them unevenly (spread 4%: 2.25 spreads), as an update from one-sided data does;
    # update 2 divides them (one voter gains a lot): it is left out, and nobody is slashed for it.
    rows = [[-1_000, -1_200, -3_000], [-950, -1_100, -2_000], [-900, -900, -900]]
    rows += [[-800, -800, -700], [-700, -700, -600], [-650, -600, 2_000]]
    updates, _ = judgement.judge(P, ballots(*rows), {}, BARS)
    assert [u.contribution_bps for u in updates] == [-900, -900, -900]
    assert [(u.included, u.condemned) for u in updates] == [(False, True), (False, False), (False, False)]


def test_a_coalition_short_of_two_thirds_cannot_condemn_by_the_size_of_its_claims():
    # 9 of 17 voters (a 45% coalition, none of whose members proposes) claim an honest update harms
    # them by 200%, 3 honest voters who lack its data find it harmful by 8%, 5 find it helpful: two
    # thirds find it harmful and the median is the coalition's claim, far past condemn_bps (20%)
    colluders, helped = [[-20_000]] * 9, [[1_000]] * 5
    framed, _ = judgement.judge(P[:1], ballots(*colluders, *[[-800]] * 3, *helped), {}, BARS)
    assert (framed[0].contribution_bps, framed[0].harmful_bps, framed[0].two_thirds_bps) == (-20_000, 7_058, -800)
    assert (framed[0].included, framed[0].condemned) == (False, False)  # left out, its proposer not slashed
    # what two thirds of the stake find decides: honest voters harmed beyond half of condemn_bps complete it
    harmed, _ = judgement.judge(P[:1], ballots(*colluders, *[[-1_100]] * 3, *helped), {}, BARS)
    assert harmed[0].condemned
    # a poisoned update two thirds of the voters find harmful beyond condemn_bps, against 5 liars
    poisoned, _ = judgement.judge(P[:1], ballots(*[[-4_000]] * 12, *helped), {}, BARS)
    assert poisoned[0].condemned


def test_the_spread_alone_does_not_condemn_an_update_that_points_with_the_others():
    # Every voter finds each update harmful by 9-10% (below condemn_bps, beyond three spreads). Update
    # 0 points with the round's other updates (an honest step that overfit its shard near convergence),
    # update 1 against them (a sign flip), update 2 with them but harms beyond condemn_bps.
    rows = [[-950, -950, -2_500], [-900, -900, -2_400], [-900, -900, -2_300], [-1_000, -1_000, -2_600]]
    aligned = [6_000, -7_000, 9_000]
    updates, _ = judgement.judge(P, ballots(*rows, alignments=aligned), {}, BARS)
    assert [u.alignment_bps for u in updates] == aligned
    assert [(u.included, u.condemned) for u in updates] == [(False, False), (False, True), (False, True)]
    # Ballots without alignments show nothing aligned: the spread condemns as before.
    updates, _ = judgement.judge(P, ballots(*rows), {}, BARS)
    assert [u.alignment_bps for u in updates] == [-BPS] * 3
    assert [u.condemned for u in updates] == [True, True, True]


def test_the_spread_spares_an_update_at_a_low_positive_cosine_but_not_a_random_direction():
    rows = [[-950, -950], [-900, -900], [-900, -900], [-1_000, -1_000]]
    updates, _ = judgement.judge(P[:2], ballots(*rows, alignments=[1_000, 200]), {}, BARS)
    assert [u.condemned for u in updates] == [False, True]


def test_the_spread_alone_does_not_condemn_an_update_whose_drawn_round_mates_never_revealed():
    # every voter finds it harmful by 10-15%, alike: beyond three spreads, short of condemn_bps (20% here)
    rows = [[-1_500], [-1_400], [-1_300], [-1_200], [-1_100], [-1_000]]
    deserted, _ = judgement.judge(P[:1], ballots(*rows, alignments=[0]), {}, BARS, drawn=3)
    assert (deserted[0].included, deserted[0].condemned) == (False, False)  # left out, its proposer not slashed
    # a round drawn with one proposer (a small federation) has only the spread: it condemns as before
    for drawn in (0, 1):
        assert judgement.judge(P[:1], ballots(*rows, alignments=[0]), {}, BARS, drawn=drawn)[0][0].condemned
    # with a round-mate it points away from, the same harm condemns
    paired = [row + [500] for row in rows]
    together, _ = judgement.judge(P[:2], ballots(*paired, alignments=[-6_000, -6_000]), {}, BARS, drawn=3)
    assert (together[0].included, together[0].condemned) == (False, True)
    # beyond condemn_bps absence is no excuse
    deep, _ = judgement.judge(P[:1], ballots(*[[-7_000]] * 6, alignments=[0]), {}, BARS, drawn=3)
    assert deep[0].condemned


def test_the_alignment_bar_is_the_chains_param():
    rows = [[-950, -950], [-900, -900], [-900, -900], [-1_000, -1_000]]
    bs = ballots(*rows, alignments=[1_000, 200])
    stricter, lenient = replace(BARS, aligned_bps=1_500), replace(BARS, aligned_bps=0)
    assert [u.condemned for u in judgement.judge(P[:2], bs, {}, stricter)[0]] == [True, True]
    assert [u.condemned for u in judgement.judge(P[:2], bs, {}, lenient)[0]] == [False, False]


def test_the_bars_are_read_from_the_params():
    params = types_pb2.Params(harm_bps=1, condemn_bps=2, include_bps=3, exclude_bps=4, aligned_bps=5)
    assert judgement.Bars.of(params) == judgement.Bars(1, 2, 3, 4, 5)


def test_a_minority_claiming_alignment_does_not_shield_an_update():
    rows = [[-950, 0, 0]] * 5
    honest, liars = [-7_000, 5_000, 5_000], [10_000, 5_000, 5_000]
    voters = ballots(*rows, alignments=honest)
    voters[3].alignments[:] = voters[4].alignments[:] = liars  # two of five voters claim update 0 is aligned
    updates, _ = judgement.judge(P, voters, {}, BARS)
    assert updates[0].alignment_bps == -7_000 and updates[0].condemned
    # Once they hold most of the voting stake, the median is theirs: the spread alone no longer condemns.
    weights = {voters[3].voter: 10, voters[4].voter: 10}
    updates, _ = judgement.judge(P, voters, weights, BARS)
    assert updates[0].alignment_bps == 10_000 and not updates[0].condemned and not updates[0].included


def test_a_one_sided_update_joins_while_a_poisoned_one_or_a_deep_harm_stays_out():
    # Rows are voters. Update 0 comes from one-sided (non-IID) data: the two voters who share them
    # gain a lot, half the stake loses modestly; the federation needs it, so it joins. Update 1
    # harms every voter alike: left out and condemned. Update 2 harms half the stake deeply (median
    # past exclude_bps): left out, but not condemned, since fewer than two thirds find it harmful.
    rows = [[3_000, -1_500, -2_500], [2_500, -1_600, -2_000], [100, -1_400, -1_500]]
    rows += [[-600, -1_500, 600], [-700, -1_550, 700], [-800, -1_450, 800]]
    updates, voters = judgement.judge(P, ballots(*rows), {}, BARS)
    assert [u.contribution_bps for u in updates] == [-600, -1_500, -1_500]
    assert [(u.included, u.condemned) for u in updates] == [(True, False), (False, True), (False, False)]
    # Half the stake found update 0 harmful: those voters agree with the consensus although it
    # joined; its gainers are not paid for it, nor charged (a third or more of the stake sides with them).
    assert [(v.agreement_bps, v.contradiction_bps) for v in voters] == [(6_666, 0)] * 6


def test_liars_that_pull_a_harmful_update_in_are_not_paid_for_it():
    # Four honest voters find update 0 harmful; three liars call it helpful, which keeps the harmful
    # stake under two thirds: it joins (its median harm is modest), but the consensus on it is
    # harmful, so the honest voters agree on it and the liars, short of two thirds against them,
    # do not contradict it. Update 1 the median finds clearly helpful: the liars dispute it, which
    # weighs their say, and nobody is charged for it.
    honest, liar = [-700, 2_000], [700, -2_000]
    bs = ballots(honest, honest, honest, liar, liar, liar, honest)
    updates, voters = judgement.judge(P[:2], bs, {}, BARS)
    assert [(u.included, u.condemned) for u in updates] == [(True, False), (True, False)]
    assert [(v.agreement_bps, v.contradiction_bps, v.disputed_bps) for v in voters] == (
        [(10_000, 0, 0)] * 3 + [(0, 0, 5_000)] * 3 + [(10_000, 0, 0)]
    )


def test_liars_below_a_third_of_the_stake_contradict_clear_verdicts():
    honest, liar = [1_000, -6_000], [-1_000, 6_000]
    updates, voters = judgement.judge(P[:2], ballots(honest, honest, honest, liar), {}, BARS)
    assert [(u.included, u.condemned) for u in updates] == [(True, False), (False, True)]
    assert [(v.agreement_bps, v.contradiction_bps) for v in voters] == [(10_000, 0)] * 3 + [(0, 10_000)]
    assert [v.disputed_bps for v in voters] == [0] * 4  # two thirds back both verdicts


def test_liars_above_a_third_dispute_a_helpful_verdict_the_median_backs():
    # Four liars of nine (44%) trash an update that five honest voters find helpful: no two thirds
    # back the helpful verdict, but the median voter is honest and finds it helpful beyond harm_bps.
    # The liars dispute it: that weighs their say, and is not charged (their stake).
    honest, liar = [1_500], [-3_000]
    bs = ballots(honest, liar, honest, liar, honest, liar, honest, liar, honest)
    updates, voters = judgement.judge(P[:1], bs, {}, BARS)
    assert (updates[0].included, updates[0].contribution_bps) == (True, 1_500)
    assert [v.disputed_bps for v in voters] == [0, 10_000] * 4 + [0]
    assert [v.contradiction_bps for v in voters] == [0] * 9
    # At a median of just harm_bps the helpful verdict is not clear, and nobody disputes it.
    honest = [BARS.harm_bps]
    bs = ballots(honest, liar, honest, liar, honest, liar, honest, liar, honest)
    assert [v.disputed_bps for v in judgement.judge(P[:1], bs, {}, BARS)[1]] == [0] * 9


def test_honest_voters_do_not_contradict_a_harmful_verdict_only_the_median_backs():
    # Non-IID data: four liars and one honest voter without the update's data find an honest update
    # harmful, four honest voters who share its data find it helpful. It joins (its median harm is
    # modest), but the consensus is harmful; short of two thirds that verdict is not clear, and those
    # who found the update helpful neither contradict nor dispute it.
    liar, lacking, sharing = [-3_000], [-800], [2_000]
    bs = ballots(liar, sharing, liar, sharing, liar, sharing, liar, sharing, lacking)
    updates, voters = judgement.judge(P[:1], bs, {}, BARS)
    assert (updates[0].included, updates[0].contribution_bps) == (True, -800)
    assert [(v.contradiction_bps, v.disputed_bps) for v in voters] == [(0, 0)] * 9


@given(
    st.lists(st.lists(st.integers(-20_000, 20_000), min_size=3, max_size=3), min_size=1, max_size=9),
    st.lists(st.integers(0, 5_000), min_size=9, max_size=9),
)
def test_verdict_invariants(rows, stake_list):
    bs = ballots(*rows)
    stakes = {b.voter: s for b, s in zip(bs, stake_list)}
    updates, voters = judgement.judge(P, bs, stakes, BARS)
    for u in updates:
        assert not (u.included and u.condemned)
        assert u.condemned <= (3 * u.harmful_bps >= 2 * 10_000 - 3)  # two thirds, up to rounding of the share
        assert u.condemned <= (u.contribution_bps < -BARS.harm_bps)  # two thirds harmful put the median past harm_bps
        assert u.included <= (3 * u.harmful_bps < 2 * 10_000 and u.contribution_bps >= -BARS.exclude_bps)
        assert 0 <= u.harmful_bps <= 10_000
    for v in voters:
        assert 0 <= v.agreement_bps + v.contradiction_bps + v.disputed_bps <= 10_000  # one reading per update
    # the same ballots in another order give the same verdicts
    assert judgement.judge(P, list(reversed(bs)), stakes, BARS)[0] == updates


@given(
    st.lists(st.integers(-judgement.RELATIVE_CAP, -BARS.harm_bps - 1), min_size=1, max_size=9),  # claims of harm
    st.lists(st.integers(-BARS.condemn_bps // 2, 2 * BARS.harm_bps), min_size=1, max_size=9),
    st.integers(0, 9),
    st.lists(st.integers(1, 5_000), min_size=27, max_size=27),
)
@settings(max_examples=400)  # a coalition between a half and two thirds is a narrow band of the draws
def test_a_coalition_short_of_two_thirds_never_condemns_by_size_what_no_honest_voter_finds_that_harmful(
    claims, honest, harmed, stake_list
):
    # the coalition claims any harm; honest voters find a harm short of half of condemn_bps, or none
    # (`harmed` of them are harmed beyond harm_bps: the few who lack an honest update's data)
    honest = [-BARS.condemn_bps // 2] * harmed + honest
    bs = ballots(*[[c] for c in claims], *[[h] for h in honest])
    stakes = {b.voter: w for b, w in zip(bs, stake_list)}
    coalition = sum(stakes[b.voter] for b in bs[: len(claims)])
    if 3 * coalition >= 2 * sum(stakes.values()):
        return  # two thirds decide, whoever they are
    by_size_only = replace(BARS, aligned_bps=-BPS - 1)  # no alignment is below it: the spread rule never fires
    assert not judgement.judge(P[:1], bs, stakes, by_size_only)[0][0].condemned


@given(
    st.lists(st.integers(-9_999, 20_000), min_size=1, max_size=9),  # a loss can only fall to nothing
    st.lists(st.integers(0, 5_000), min_size=9, max_size=9),
)
def test_round_gain_invariants(gains, stake_list):
    bs = gained(*gains)
    stakes = {b.voter: s for b, s in zip(bs, stake_list)}
    gain = judgement.round_gain(bs, stakes, BARS)
    assert gain.spread_bps >= 0 and min(gains) <= gain.gain_bps <= max(gains)
    assert gain.harmful <= (gain.gain_bps < -BARS.harm_bps)
    assert judgement.round_gain(list(reversed(bs)), stakes, BARS) == gain  # order does not matter
    # a harmful round only ever leaves updates out, and never condemns or charges for it
    rows = [[g, -g, 0] for g in gains]
    plain = judgement.judge(P, ballots(*rows), stakes, BARS)
    judged = judgement.judge(P, ballots(*rows), stakes, BARS, replace(gain, harmful=True))
    assert judged[1] == plain[1]
    for u, v in zip(judged[0], plain[0]):
        assert (u.condemned, u.contribution_bps) == (v.condemned, v.contribution_bps)
        assert u.included == (v.included and u.contribution_bps > BARS.harm_bps)
        assert u.left_out_with_round == (v.included and not u.included)
