"""The deterministic state machine: (state, block of txs, block hash, height) -> (new state, results).

The ABCI application drives it on chain; the simulator drives the very same object off chain.
Writes are layered: committed store <- pending (InitChain and finalized blocks not yet committed)
<- one block <- one tx. CheckTx runs on its own layer over the committed store, reset at Commit.
"""
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from abci_app import genesis as genesis_mod
from abci_app import rounds, staking, tensors
from abci_app.codes import Code, TxError
from abci_app.context import Context
from abci_app.events import Event, event
from abci_app.state import State
from abci_app.store import MemoryStore, Overlay, SqliteStore, next_app_hash
from abci_app.txs import verify_tx
from flchain.v1 import genesis_pb2, types_pb2

CHAIN_ID_KEY = b"chain_id"

HANDLERS: dict[str, Callable] = {
    "bond": staking.bond,
    "unbond": staking.unbond,
    "submit_update": rounds.submit_update,
    "vote": rounds.vote,
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

    # --- genesis -----------------------------------------------------------------------------
    def init_chain(self, genesis: genesis_pb2.GenesisState, chain_id: str, initial_height: int = 1) -> bytes:
        """Write genesis into the pending layer (committed with the first block); returns its app hash."""
        genesis_mod.validate(genesis)
        self._pending = Overlay(self.store)
        self._pending.set(CHAIN_ID_KEY, chain_id.encode())
        state = State(self._pending)
        state.set_params(genesis.params)
        state.set_round(rounds.open_round(1, initial_height, 0))
        fixed = [tensors.encode(t.name, tensors.decode(t, genesis.params.frac_bits)) for t in genesis.model]
        state.set_model(types_pb2.GlobalModel(version=0, round=0, tensors=fixed))
        for account in genesis.accounts:
            state.set_account(account)
        for gp in genesis.participants:
            if state.account(gp.address) is None:
                state.set_account(types_pb2.Account(address=gp.address))
            p = types_pb2.Participant(address=gp.address, stake=gp.stake, status=staking.BONDED,
                                      bonded_height=initial_height)
            state.record_event(p, types_pb2.ParticipantEvent(
                height=initial_height, kind="bonded", reason="genesis", amount=gp.stake, stake_after=gp.stake))
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
    def check_tx(self, raw: bytes) -> TxOutcome:
        """Run the tx against committed state plus earlier accepted mempool txs; keep it only if it passes."""
        scratch = Overlay(self._check)
        outcome = self._run_tx(scratch, raw, self.height + 1)
        if outcome.code == Code.OK:
            scratch.write_into(self._check)
        return outcome

    def verify_stateless(self, raw: bytes) -> TxOutcome:
        """Checks that need no state beyond params: what ProcessProposal demands of every tx."""
        params = State(self._pending).params()
        try:
            verify_tx(raw, self.chain_id, params.max_tx_bytes)
        except TxError as err:
            return TxOutcome(err.code, str(err))
        return TxOutcome(Code.OK, "")

    def _run_tx(self, parent: Overlay, raw: bytes, height: int) -> TxOutcome:
        """Signature and nonce first (a valid tx consumes its nonce even if a message then fails,
        as in Cosmos, so later txs of the account still line up); messages apply all or nothing."""
        outer = Overlay(parent)
        state = State(outer)
        params = state.params()
        try:
            tx = verify_tx(raw, self.chain_id, params.max_tx_bytes)
            account = state.account(tx.sender)
            if account is None:
                raise TxError(Code.UNKNOWN_ACCOUNT, "sender has no account on this chain (fund it at genesis)")
            if tx.body.nonce != account.nonce:
                raise TxError(Code.BAD_NONCE, f"nonce {tx.body.nonce} does not match the account's next nonce "
                                              f"{account.nonce}")
        except TxError as err:
            return TxOutcome(err.code, str(err))
        account.nonce += 1
        state.set_account(account)
        inner = Overlay(outer)
        ctx = Context(State(inner), params, height)
        try:
            for msg in tx.body.messages:
                kind = msg.WhichOneof("sum")
                ctx.events.append(event("message", action=kind, sender=tx.sender, nonce=tx.body.nonce))
                HANDLERS[kind](ctx, tx.sender, getattr(msg, kind))
        except TxError as err:
            outer.write_into(parent)
            return TxOutcome(err.code, str(err))
        inner.write_into(outer)
        outer.write_into(parent)
        return TxOutcome(Code.OK, "", ctx.events)

    # --- blocks ------------------------------------------------------------------------------
    def finalize_block(self, txs: Sequence[bytes], height: int, block_hash: bytes) -> BlockOutcome:
        """Execute a decided block; the result waits in the pending layer until commit()."""
        block = Overlay(self._pending)
        results = [self._run_tx(block, raw, height) for raw in txs]
        state = State(block)
        ctx = Context(state, state.params(), height)
        staking.release_matured_unbondings(ctx)
        rounds.end_block(ctx, block_hash)
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

    def committed_state(self) -> State:
        """Read-only view of the last committed state (what queries answer from)."""
        return State(Overlay(self.store))
