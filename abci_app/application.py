"""ABCI 2.0 glue: turns CometBFT's requests into StateMachine calls and results into responses.

Application failures are reported as codes (CheckTx, ExecTxResult, ProcessProposal REJECT),
never as exceptions, because an exception makes CometBFT stop.
"""

import logging

from abci_app import genesis
from abci_app.codes import CODESPACE, Code
from abci_app.events import Event
from abci_app.machine import StateMachine
from abci_app.metrics import AppMetrics
from abci_app.queries import answer
from abci_app.server import BaseApplication
from tendermint.abci import types_pb2 as abci

log = logging.getLogger("abci_app")
APP_VERSION = 1


def block_time_ms(time) -> int:
    """A header's Timestamp as Unix milliseconds: integers only, the same on every validator."""
    return time.seconds * 1_000 + time.nanos // 1_000_000


def _abci_events(events: list[Event]) -> list[abci.Event]:
    return [
        abci.Event(type=e.type, attributes=[abci.EventAttribute(key=k, value=v, index=True) for k, v in e.attributes])
        for e in events
    ]


class FlchainApplication(BaseApplication):
    def __init__(self, machine: StateMachine, metrics: AppMetrics | None = None) -> None:
        self.machine = machine
        self.metrics = metrics or AppMetrics()

    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo:
        log.info("info: last committed height %d, app hash %s", self.machine.height, self.machine.app_hash.hex())
        return abci.ResponseInfo(
            data="flchain",
            version="0.1.0",
            app_version=APP_VERSION,
            last_block_height=self.machine.height,
            last_block_app_hash=self.machine.app_hash,
        )

    def init_chain(self, req: abci.RequestInitChain) -> abci.ResponseInitChain:
        if not req.app_state_bytes:
            raise ValueError("genesis.json has no app_state; create it with `flchain localnet up` or see README")
        state = genesis.from_app_state_bytes(req.app_state_bytes)
        app_hash = self.machine.init_chain(state, req.chain_id, req.initial_height or 1)
        log.info(
            "init_chain: chain %s, %d accounts, %d participants, app hash %s",
            req.chain_id,
            len(state.accounts),
            len(state.participants),
            app_hash.hex(),
        )
        return abci.ResponseInitChain(app_hash=app_hash)

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        outcome = self.machine.check_tx(req.tx, recheck=req.type == abci.RECHECK)
        if outcome.code != Code.OK:
            log.info("check_tx rejected (code %d) %s", outcome.code, outcome.log)
            self.metrics.tx_refused("check_tx", outcome.code)
        return abci.ResponseCheckTx(code=outcome.code, log=outcome.log, codespace=CODESPACE if outcome.code else "")

    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        """Keep the mempool's order; drop txs no honest validator would accept; respect the byte budget."""
        chosen, size = [], 0
        for tx in req.txs:
            if size + len(tx) > req.max_tx_bytes:
                break
            if self.machine.verify_stateless(tx).code == Code.OK:
                chosen.append(tx)
                size += len(tx)
        return abci.ResponsePrepareProposal(txs=chosen)

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        for tx in req.txs:
            outcome = self.machine.verify_stateless(tx)
            if outcome.code != Code.OK:
                log.warning("process_proposal: rejecting block %d: %s", req.height, outcome.log)
                return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.REJECT)
        return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.ACCEPT)

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        with self.metrics.finalize_seconds.time():
            outcome = self.machine.finalize_block(list(req.txs), req.height, req.hash, block_time_ms(req.time))
        for raw, r in zip(req.txs, outcome.tx_results):
            if r.code:
                self.metrics.tx_refused("block", r.code)
            elif any(e.type == "update_submitted" for e in r.events):
                self.metrics.update_bytes.inc(len(raw))
        results = [
            abci.ExecTxResult(
                code=r.code, log=r.log, codespace=CODESPACE if r.code else "", events=_abci_events(r.events)
            )
            for r in outcome.tx_results
        ]
        for event in outcome.events:
            if event.type in ("round_started", "candidate_ready", "aggregation_started", "round_finished"):
                log.info("height %d: %s %s", req.height, event.type, dict(event.attributes))
        return abci.ResponseFinalizeBlock(
            events=_abci_events(outcome.events), tx_results=results, app_hash=outcome.app_hash
        )

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        with self.metrics.commit_seconds.time():
            self.machine.commit()
        self.metrics.observe_state(self.machine.committed_state(), self.machine.height)
        return abci.ResponseCommit()

    def query(self, req: abci.RequestQuery) -> abci.ResponseQuery:
        result = answer(self.machine.committed_state(), req.path)
        return abci.ResponseQuery(
            code=result.code,
            value=result.value,
            log=result.log,
            key=req.data,
            height=self.machine.height,
            codespace=CODESPACE if result.code else "",
        )
