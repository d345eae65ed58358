"""CometBFT settings every flchain node needs (sizes for model updates, tx index, metrics), applied
to the config.toml and genesis.json that `cometbft init` writes."""

import json
import shutil
from pathlib import Path

import tomlkit

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_COMETBFT = REPO_ROOT / ".bin" / "cometbft"  # where scripts/setup.sh installs the pinned binary

# Sizes: a model update is one tx. 4 MiB carries ~500k int64 weights; the block must hold the
# largest tx plus header/commit/evidence, and RPC bodies carry the tx in base64 (4/3 larger).
MAX_TX_BYTES = 4 * 1024 * 1024
BLOCK_MAX_BYTES = 16 * 1024 * 1024
BLOCK_MAX_GAS = -1
EVIDENCE_MAX_BYTES = 1024 * 1024  # CometBFT's default; must not exceed block max_bytes
P2P_RATE = 20 * 1024 * 1024  # bytes/s each way per peer (default 5 MB/s)
RPC_BODY_MARGIN = 1024 * 1024

# Consensus timing between machines: CometBFT's gossip defaults, a propose timeout that lets a
# proposal carrying a large update arrive, and blocks about every timeout_commit. Phases end on their
# last tx, so a round lasts its participants' compute plus a few block intervals.
TIMEOUT_PROPOSE = "3s"
TIMEOUT_COMMIT = "500ms"


def default_cometbft() -> Path:
    """The binary setup installed in the project, else `cometbft` on PATH."""
    if PROJECT_COMETBFT.exists():
        return PROJECT_COMETBFT
    found = shutil.which("cometbft")
    return Path(found) if found else PROJECT_COMETBFT


def rpc_max_body_bytes(max_tx_bytes: int) -> int:
    """A broadcast body carries the tx in base64 (4/3 of it) inside a JSON envelope."""
    return (max_tx_bytes * 4) // 3 + RPC_BODY_MARGIN


def edit_config_toml(
    path: Path,
    *,
    moniker: str,
    abci_address: str,
    p2p_listen: str,
    rpc_listen: str,
    metrics_listen: str,
    external_address: str = "",
    peers: list[str] | None = None,
    max_tx_bytes: int = MAX_TX_BYTES,
    timeout_commit: str = TIMEOUT_COMMIT,
    timeout_propose: str = TIMEOUT_PROPOSE,
    gossip_interval: str | None = None,
) -> None:
    """Rewrite a node's config.toml for flchain. Listen addresses are host:port.

    gossip_interval: the p2p flush throttle and consensus gossip sleep (CometBFT's 100 ms when
    None); a one-host net sets 10 ms, since there a message takes well under a millisecond.
    tomlkit keeps the template's comments, so the file stays readable for whoever opens it."""
    doc = tomlkit.parse(path.read_text())
    doc["moniker"] = moniker
    doc["proxy_app"] = abci_address
    doc["abci"] = "socket"

    rpc = doc["rpc"]
    rpc["laddr"] = f"tcp://{rpc_listen}"
    rpc["max_body_bytes"] = rpc_max_body_bytes(max_tx_bytes)
    rpc["pprof_laddr"] = ""
    rpc["grpc_laddr"] = ""

    p2p = doc["p2p"]
    p2p["laddr"] = f"tcp://{p2p_listen}"
    p2p["external_address"] = external_address
    p2p["persistent_peers"] = ",".join(peers or [])
    # Federations run over private networks and VPNs: private addresses are real peers here.
    p2p["addr_book_strict"] = False
    p2p["allow_duplicate_ip"] = True  # several organisations may share a NAT address
    p2p["send_rate"] = P2P_RATE
    p2p["recv_rate"] = P2P_RATE

    mempool = doc["mempool"]
    mempool["max_tx_bytes"] = max_tx_bytes  # must be the same on every node
    mempool["max_txs_bytes"] = max(int(mempool["max_txs_bytes"]), 64 * max_tx_bytes)

    consensus = doc["consensus"]
    consensus["timeout_propose"] = timeout_propose
    consensus["timeout_commit"] = timeout_commit
    consensus["create_empty_blocks"] = True  # deadlines are in block time: blocks must keep coming
    consensus["create_empty_blocks_interval"] = "0s"
    if gossip_interval:
        p2p["flush_throttle_timeout"] = gossip_interval
        consensus["peer_gossip_sleep_duration"] = gossip_interval

    doc["tx_index"]["indexer"] = "kv"  # txs by hash: `flchain query tx` and `tx --wait` read their block result
    doc["instrumentation"]["prometheus"] = True  # CometBFT's own metrics, beside the app's
    doc["instrumentation"]["prometheus_listen_addr"] = metrics_listen
    path.write_text(tomlkit.dumps(doc))


def edit_genesis(
    genesis: dict, *, chain_id: str, app_state: dict | None, block_max_bytes: int, max_tx_bytes: int
) -> dict:
    """The genesis doc `cometbft init` wrote, with our chain id, sizes and app_state."""
    if block_max_bytes <= 0:
        raise ValueError("block_max_bytes must be positive (-1 would let a block reach 100 MB)")
    if block_max_bytes < max_tx_bytes:
        raise ValueError(f"block_max_bytes ({block_max_bytes}) is smaller than max_tx_bytes ({max_tx_bytes})")
    genesis = json.loads(json.dumps(genesis))  # a copy
    genesis["chain_id"] = chain_id
    block = genesis["consensus_params"]["block"]
    block["max_bytes"] = str(block_max_bytes)  # int64s are JSON strings in CometBFT's codec
    block["max_gas"] = str(BLOCK_MAX_GAS)
    evidence = genesis["consensus_params"]["evidence"]
    evidence["max_bytes"] = str(min(int(evidence.get("max_bytes", EVIDENCE_MAX_BYTES)), block_max_bytes // 2))
    if app_state is not None:
        genesis["app_state"] = app_state
    else:
        genesis.pop("app_state", None)
    return genesis


def set_persistent_peers(path: Path, peers: list[str]) -> None:
    doc = tomlkit.parse(path.read_text())
    doc["p2p"]["persistent_peers"] = ",".join(peers)
    path.write_text(tomlkit.dumps(doc))
