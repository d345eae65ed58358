"""The deterministic state machine: (state, block of txs, block hash, height) -> (new state, results).

The ABCI application drives it on chain; the simulator drives the very same object off chain.
Writes are layered: committed store <- pending (InitChain and finalized blocks not yet committed)
<- one block <- one tx. CheckTx runs on its own layer over the committed store, reset at Commit.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from abci_app import aggregate_reports, messages, phases, rounds, staking, tensors, wire
from abci_app import genesis as genesis_mod
from abci_app.codes import Code, TxError
from abci_app.context import Context
from abci_app.events import Event, event
from abci_app.state import State
from abci_app.store import MemoryStore, Overlay, SqliteStore, next_app_hash
from abci_app.txs import VerifiedTx, verify_tx
from flchain.v1 import genesis_pb2, types_pb2

CHAIN_ID_KEY = b"chain_id"

HANDLERS: dict[type, Callable[[Context, bytes, Any], None]] = {
    messages.Bond: staking.bond,
    messages.Unbond: staking.unbond,
    messages.CommitUpdate: rounds.commit_update,
    messages.CommitBallot: rounds.commit_ballot,
    messages.SubmitUpdate: rounds.submit_update,
    messages.Vote: rounds.vote,
    messages.ReportAggregate: aggregate_reports.report_aggregate,
}


@dataclass
class TxOutcome:
    code: int
    log: str
    events: list[Event] = field(default_factory=list)


@dataclass
class BlockOutcome:
    tx_results: list[TxOutcome]
    events: list[Event]
    app_hash: bytes


class StateMachine:
    def __init__(self, store: SqliteStore | MemoryStore) -> None:
        self.store = store
        self.height, self.app_hash = store.last_commit()
        self._working_height, self._working_hash = self.height, self.app_hash
        self._pending = Overlay(store)
        self._check = Overlay(store)
        # Txs that passed the stateless checks in PrepareProposal/ProcessProposal at this height,
        # keyed by their bytes: FinalizeBlock does not verify their signatures a second time.
        self._verified: dict[bytes, VerifiedTx] = {}

    # --- genesis -----------------------------------------------------------------------------
    def init_chain(self, genesis: genesis_pb2.GenesisState, chain_id: str, initial_height: int = 1) -> bytes:
        """Write genesis into the pending layer (committed with the first block); returns its app hash."""
        genesis_mod.validate(genesis)
        self._pending = Overlay(self.store)
        self._pending.set(CHAIN_ID_KEY, chain_id.encode())
        state = State(self._pending)
        state.set_params(genesis.params)
        state.set_round(phases.open_round(1, initial_height, 0))
        if genesis.HasField("model_ref"):  # a model by reference: its bytes are in the object store
            state.set_model(types_pb2.GlobalModel(version=0, round=0, ref=genesis.model_ref))
        else:
            fixed = [tensors.encode(t.name, wire.decode_tensor(t, genesis.params.frac_bits)) for t in genesis.model]
            state.set_model(types_pb2.GlobalModel(version=0, round=0, tensors=fixed))
        for account in genesis.accounts:
            state.set_account(account)
        for gp in genesis.participants:
            if state.account(gp.address) is None:
                state.set_account(types_pb2.Account(address=gp.address))
            p = types_pb2.Participant(
                address=gp.address, stake=gp.stake, status=staking.BONDED, bonded_height=initial_height
            )
            state.record_event(
                p,
                types_pb2.ParticipantEvent(
                    height=initial_height, kind="bonded", reason="genesis", amount=gp.stake, stake_after=gp.stake
                ),
            )
            state.set_participant(p)
        self._working_height = initial_height - 1
        self._working_hash = next_app_hash(b"", self._working_height, self._pending.write_set_digest())
        self._check = Overlay(self._pending)  # txs may arrive before the first block commits
        return self._working_hash

    @property
    def chain_id(self) -> str:
        raw = self._pending.get(CHAIN_ID_KEY)
        return raw.decode() if raw else ""

    # --- txs ---------------------------------------------------------------------------------
    def check_tx(self, raw: bytes, recheck: bool = False) -> TxOutcome:
        """Run the tx against committed state plus earlier accepted mempool txs; keep it only if it passes.

        A recheck (after a commit) is of a tx whose signature this node already verified, so it
        only re-runs the checks whose answer may have changed (nonce, phase, stake, ...)."""
        scratch = Overlay(self._check)
        try:
            tx = verify_tx(raw, self.chain_id, self._params(), check_signature=not recheck)
        except TxError as err:
            return TxOutcome(err.code, str(err))
        outcome = self._run_tx(scratch, tx, self.height + 1)
        if outcome.code == Code.OK:
            scratch.write_into(self._check)
        return outcome

    def verify_stateless(self, raw: bytes) -> TxOutcome:
        """Checks that need no state beyond params: what Prepare/ProcessProposal demand of every tx."""
        try:
            self._verified_for_block(raw)
        except TxError as err:
            return TxOutcome(err.code, str(err))
        return TxOutcome(Code.OK, "")

    def _params(self) -> types_pb2.Params:
        return State(self._pending).params()

    def _verified_for_block(self, raw: bytes) -> VerifiedTx:
        tx = self._verified.get(raw)
        if tx is None:
            tx = verify_tx(raw, self.chain_id, self._params())
            self._verified[raw] = tx
        return tx

    def _run_tx(self, parent: Overlay, tx: VerifiedTx, height: int) -> TxOutcome:
        """Nonce first (a valid tx consumes its nonce even if a message then fails, as in Cosmos,
        so later txs of the account still line up); messages apply all or nothing."""
        outer = Overlay(parent)
        state = State(outer)
        account = state.account(tx.sender)
        try:
            if account is None:
                raise TxError(Code.UNKNOWN_ACCOUNT, "sender has no account on this chain (fund it at genesis)")
            if tx.nonce != account.nonce:
                raise TxError(
                    Code.BAD_NONCE, f"nonce {tx.nonce} does not match the account's next nonce {account.nonce}"
                )
        except TxError as err:
            return TxOutcome(err.code, str(err))
        account.nonce += 1
        state.set_account(account)
        inner = Overlay(outer)
        ctx = Context(State(inner), state.params(), height)
        try:
            for msg in tx.messages:
                ctx.events.append(event("message", action=msg.action, sender=tx.sender, nonce=tx.nonce))
                HANDLERS[type(msg)](ctx, tx.sender, msg)
        except TxError as err:
            outer.write_into(parent)
            return TxOutcome(err.code, str(err))
        inner.write_into(outer)
        outer.write_into(parent)
        return TxOutcome(Code.OK, "", ctx.events)

    def _run_block_tx(self, block: Overlay, raw: bytes, height: int) -> TxOutcome:
        try:
            tx = self._verified_for_block(raw)
        except TxError as err:
            return TxOutcome(err.code, str(err))
        return self._run_tx(block, tx, height)

    # --- blocks ------------------------------------------------------------------------------
    def finalize_block(self, txs: Sequence[bytes], height: int, block_hash: bytes, time_ms: int) -> BlockOutcome:
        """Execute a decided block; the result waits in the pending layer until commit().

        time_ms is the block's header time (Unix ms): BFT time, the same on every validator."""
        block = Overlay(self._pending)
        results = [self._run_block_tx(block, raw, height) for raw in txs]
        state = State(block)
        ctx = Context(state, state.params(), height)
        staking.release_matured_unbondings(ctx)
        rounds.end_block(ctx, block_hash, time_ms)
        digest = block.write_set_digest()
        block.write_into(self._pending)
        self._working_height = height
        self._working_hash = next_app_hash(self._working_hash, height, digest)
        return BlockOutcome(results, ctx.events, self._working_hash)

    def commit(self) -> None:
        """Persist the pending layer atomically with its height and app hash."""
        self.store.commit(self._pending.writes, self._working_height, self._working_hash)
        self.height, self.app_hash = self._working_height, self._working_hash
        self._pending = Overlay(self.store)
        self._check = Overlay(self.store)
        self._verified.clear()

    def committed_state(self) -> State:
        """Read-only view of the last committed state (what queries answer from)."""
        return State(Overlay(self.store))
