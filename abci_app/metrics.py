"""What a node's app tells Prometheus: chain progress, the round, participants and stake, refused
txs by code, block timings and update bytes. Observability only: nothing here reaches the state or
the app hash, so wall-clock timings are fine."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from abci_app import staking
from abci_app.codes import CODESPACE, code_name
from abci_app.state import State


class AppMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.height = Gauge("flchain_height", "Last committed block height", registry=r)
        self.round = Gauge("flchain_round", "Current round id", registry=r)
        self.phase = Gauge(
            "flchain_round_phase", "Current round phase: 1 select, 2 propose, 3 vote, 4 tally", registry=r
        )
        self.bonded = Gauge("flchain_participants_bonded", "Participants bonded and eligible to be drawn", registry=r)
        self.total_stake = Gauge("flchain_total_stake", "Stake of all bonded participants", registry=r)
        self.refused = Counter(
            "flchain_txs_refused", "Txs refused, by where (check_tx, block) and code", ["stage", "code"], registry=r
        )
        self.update_bytes = Counter("flchain_update_bytes", "Bytes of committed txs that carried an update", registry=r)
        self.finalize_seconds = Histogram("flchain_finalize_block_seconds", "FinalizeBlock duration", registry=r)
        self.commit_seconds = Histogram("flchain_commit_seconds", "Commit duration", registry=r)

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics over HTTP (a daemon thread) for Prometheus to scrape."""
        start_http_server(port, addr=host, registry=self.registry)

    def tx_refused(self, stage: str, code: int) -> None:
        self.refused.labels(stage, code_name(code, CODESPACE) or str(code)).inc()

    def observe_state(self, state: State, height: int) -> None:
        """The gauges, from the state just committed."""
        rnd = state.round()
        bonded = [p for p in state.participants() if p.status == staking.BONDED]
        self.height.set(height)
        self.round.set(rnd.id)
        self.phase.set(rnd.phase)
        self.bonded.set(len(bonded))
        self.total_stake.set(sum(p.stake for p in bonded))
