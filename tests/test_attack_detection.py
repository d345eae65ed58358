"""Each attack is caught on a small run of the real participant code over the chain's state machine.

Corrupting attacks (label flipping, sign flipping, noise, scaling, a sign flip at honest size)
are caught by the voters' leave-one-out evidence: most of the attacker's updates are condemned and
left out of the FedAvg, every honest one is kept. Lying voters are caught by the tally: their evidence
contradicts clear verdicts and costs them stake. Free riders are caught either by the chain itself
(an all-zero update is refused at its reveal, so a free rider drawn as proposer is slashed for
liveness) or by
the voters (a tiny random step contributes nothing, and dilutes the others: it is never paid).
Here attackers vote truthfully, so each verdict is the honest evidence on the update.
"""

import pytest

from experiments.config import SimConfig
from experiments.simulator import Simulation


def small_run(attack: str, seed: int = 0):
    return simulation(attack, seed).run()


def simulation(attack: str, seed: int = 0) -> Simulation:
    # Attackers vote truthfully here, so that every verdict is the honest voters' evidence on the update.
    return Simulation(
        SimConfig(
            participants=10,
            attacker_fraction=0.4,
            attack=attack,
            attackers_lie=False,
            rounds=12,
            mode="torch",
            seed=seed,
        )
    )


def verdicts(sim: Simulation, result) -> tuple[list, list]:
    """(attackers' verdicts, honest participants' verdicts) over the whole run."""
    state = sim.state()
    malicious = {k.address for k, m in zip(sim.keys, result.malicious) if m}
    every = [v for record in result.records for v in state.round_by_id(record.round_id).verdicts]
    return [v for v in every if v.proposer in malicious], [v for v in every if v.proposer not in malicious]


def reasons(sim: Simulation, result, malicious: bool) -> list[str]:
    state = sim.state()
    return [
        e.reason
        for key, m in zip(sim.keys, result.malicious)
        if m == malicious
        for e in state.history(key.address, state.participant(key.address))
    ]


@pytest.mark.parametrize("attack", ["label_flip", "sign_flip", "gaussian_noise", "scaled", "stealthy"])
def test_attackers_updates_are_left_out_and_condemned_honest_ones_kept(attack):
    sim = simulation(attack)
    result = sim.run()
    attacked, honest = verdicts(sim, result)
    assert attacked and honest, "the run must have updates of both kinds"
    # a sign flip at honest size harms by less than condemn_bps, but every voter alike: condemned as
    # beyond three times the voters' spread (seeds 0-2: 5 of 7, 4 of 8, 3 of 5; 3 of 7 on seed 0
    # when only condemn_bps condemned)
    assert sum(v.condemned for v in attacked) >= 0.5 * len(attacked)
    assert sum(v.included for v in attacked) <= len(attacked) / 4
    assert not any(v.condemned for v in honest)
    # an honest update is kept, unless its round's updates together harmed the voters (then only
    # those that clearly help join): only a round that held an attack does
    state, malicious = sim.state(), {k.address for k, m in zip(sim.keys, result.malicious) if m}
    for record in result.records:
        rnd = state.round_by_id(record.round_id)
        for v in rnd.verdicts:
            if v.proposer not in malicious and not v.included:
                assert v.left_out_with_round and rnd.gain.harmful and malicious & set(rnd.submitted)
    assert sum(v.included for v in honest) > len(honest) / 2  # sign flips, seed 0: 9 of 13
    assert result.attacker_return < result.honest_return and result.honest_return > 0


def voting_net(sim: Simulation, malicious: bool) -> list[int]:
    """Per participant of the kind: stake won minus stake lost as a voter (0 for one never charged)."""
    state = sim.state()
    nets = []
    for key, m in zip(sim.keys, sim.malicious):
        events = [
            e for e in state.history(key.address, state.participant(key.address)) if e.reason.startswith("voter_")
        ]
        if m == malicious:
            nets.append(sum(e.amount if e.kind == "rewarded" else -e.amount for e in events))
    return nets


def test_lying_voters_contradict_clear_verdicts_and_lose_stake():
    sim = Simulation(SimConfig(participants=10, attacker_fraction=0.2, attack="lying_voter", rounds=12, mode="torch"))
    result = sim.run()
    assert "voter_contradicted" in reasons(sim, result, malicious=True)
    # a malicious vote does not pay: every liar loses as a voter, more than any honest voter (one
    # with unusual data may lose a little); a ballot never earns, an honest one included
    liars, honest = voting_net(sim, malicious=True), voting_net(sim, malicious=False)
    assert len(liars) == 2 and len(honest) == 8
    assert max(liars) < min(honest) and max(liars) < 0 and max(honest) == 0
    assert result.attacker_return < 0 < result.honest_return


def test_free_riders_are_never_paid_as_proposers():
    sim = simulation("free_rider")
    result = sim.run()
    riders = reasons(sim, result, malicious=True)
    # zeros are refused at their reveal: a committed but unrevealed update is slashed for liveness
    assert "update_included" not in riders and riders.count("unrevealed_update") >= 1
    sim = simulation("tiny_step")
    result = sim.run()
    stepped, _ = verdicts(sim, result)
    contributions = sorted(v.contribution_bps for v in stepped)
    assert stepped and contributions[len(contributions) // 2] <= 0  # nothing, or worse: it dilutes the others

    def paid_and_proposed(malicious: bool) -> tuple[int, int]:
        state = sim.state()
        keys = [k for k, m in zip(sim.keys, result.malicious) if m == malicious]
        paid = sum(
            e.amount
            for k in keys
            for e in state.history(k.address, state.participant(k.address))
            if e.reason == "update_included"
        )
        return paid, sum(state.participant(k.address).rounds_proposed for k in keys)

    # what a tiny step earns as proposer is noise: it is paid only where diluting harmful updates
    # beside it helps (per proposal, seeds 0-2: 39, 32 and 2 against 139, 142 and 102 for honest
    # proposers)
    (stepped_paid, stepped_proposed), (honest_paid, honest_proposed) = paid_and_proposed(True), paid_and_proposed(False)
    assert stepped_paid * 3 * honest_proposed < honest_paid * stepped_proposed


def test_a_round_without_any_update_costs_only_its_silent_proposers():
    # 6 participants draw one proposer a round: a free rider drawn alone leaves the round with no
    # update at all (its zeros are refused); the next round is drawn at once and must be played
    # (attackers vote truthfully: with half the stake, lying voters would decide the rounds)
    config = SimConfig(
        participants=6, attacker_fraction=0.5, attack="free_rider", attackers_lie=False, rounds=10, mode="torch"
    )
    sim = Simulation(config)
    result = sim.run()
    assert "no_updates" in [r.outcome for r in result.records]
    assert len(result.records) == 10
    assert "unrevealed_update" in reasons(sim, result, malicious=True)
    assert not {"liveness_proposer", "unrevealed_update"} & set(reasons(sim, result, malicious=False))
    assert result.honest_removed_share == 0
