"""Each attack is caught on a small run of the real participant code over the chain's state machine.

Corrupting attacks (label flipping, sign flipping, noise, scaling) are caught by the voters:
rounds whose candidate holds an attacker's update are rejected more often than rounds without.
Lying voters are caught by the tally: they end on the minority side and lose stake. Free riders
are caught by the chain itself: an all-zero update is refused, so a free rider drawn as proposer
is slashed for liveness instead of being paid for the others' work.
"""

import numpy as np
import pytest

from experiments.config import SimConfig
from experiments.simulator import Simulation


def small_run(attack: str, seed: int = 0):
    return simulation(attack, seed).run()


def simulation(attack: str, seed: int = 0) -> Simulation:
    # Attackers vote truthfully here, so that a rejection is the honest voters' verdict on the update.
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


@pytest.mark.parametrize("attack", ["label_flip", "sign_flip", "gaussian_noise", "scaled"])
def test_rounds_with_the_attacker_are_rejected_more_often(attack):
    result = small_run(attack)
    attacked = [r.outcome == "rejected" for r in result.records if r.malicious_proposers > 0]
    clean = [r.outcome == "rejected" for r in result.records if r.malicious_proposers == 0]
    assert attacked and clean, "the run must have rounds of both kinds"
    assert np.mean(attacked) > np.mean(clean), (attacked, clean)
    assert result.attacker_return < 0 < result.honest_return


def test_lying_voters_end_in_the_minority_and_lose_stake():
    result = small_run("lying_voter")
    assert result.attacker_return < 0 < result.honest_return
    final = result.records[-1].stakes
    liars = [s for s, m in zip(final, result.malicious) if m]
    honest = [s for s, m in zip(final, result.malicious) if not m]
    assert max(liars) < min(honest)


def test_free_riders_are_refused_and_never_paid_as_proposers():
    sim = simulation("free_rider")
    result = sim.run()
    state = sim.state()
    reasons = [
        e.reason
        for key, malicious in zip(sim.keys, result.malicious)
        if malicious
        for e in state.history(key.address, state.participant(key.address))
    ]
    assert "proposer_accepted" not in reasons
    assert reasons.count("liveness_proposer") >= 1
    assert result.attacker_return < 0 < result.honest_return
