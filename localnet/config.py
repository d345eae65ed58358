"""Everything a localnet's layout depends on, in one place: paths and config values (node i's
ports are client.endpoints.node_ports(i, base_port)).

File layout under HOME (default <repo>/.localnet):
    HOME/node<i>/            cometbft home of node i (config/, data/), as `cometbft testnet` writes it
    HOME/logs/node<i>-app.log, node<i>-cometbft.log, node<i>-gateway.log
    HOME/pids.json           the processes `up` started (deleted by `down`)
"""

import json
from pathlib import Path

import tomlkit

from client.endpoints import HOST, NodePorts

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = REPO_ROOT / ".localnet"
DEFAULT_COMETBFT = REPO_ROOT / ".bin" / "cometbft"
DEFAULT_CHAIN_ID = "flchain-localnet"
DEFAULT_VALIDATORS = 4

# Sizes: a model update is one tx. 4 MiB carries ~500k int64 weights; the block must hold the
# largest tx plus header/commit/evidence, and RPC bodies carry the tx in base64 (4/3 larger).
MAX_TX_BYTES = 4 * 1024 * 1024
BLOCK_MAX_BYTES = 16 * 1024 * 1024
BLOCK_MAX_GAS = -1
EVIDENCE_MAX_BYTES = 1024 * 1024  # CometBFT's default; must not exceed block max_bytes
P2P_RATE = 20 * 1024 * 1024  # bytes/s each way per peer (default 5 MB/s)
RPC_BODY_MARGIN = 1024 * 1024

# Consensus timing for one host: blocks every ~timeout_commit, a generous propose timeout so that
# a proposal carrying a large update still arrives in time. On loopback a message takes well under
# a millisecond, so the p2p flush throttle and the consensus gossip sleep (100 ms each by default,
# tuned for the internet) are what make a block slow; 10 ms each lets a block follow the last one
# by little more than timeout_commit. Phases end on their last tx, so a round lasts its
# participants' compute plus a few such intervals.
TIMEOUT_PROPOSE = "3s"
TIMEOUT_COMMIT = "100ms"
LOOPBACK_FLUSH_THROTTLE = "10ms"
LOOPBACK_GOSSIP_SLEEP = "10ms"

LOG_DIR = "logs"
PIDS_FILE = "pids.json"


def node_dir_name(index: int) -> str:
    return f"node{index}"


def rpc_max_body_bytes(max_tx_bytes: int) -> int:
    """A broadcast body carries the tx in base64 (4/3 of it) inside a JSON envelope."""
    return (max_tx_bytes * 4) // 3 + RPC_BODY_MARGIN


def edit_config_toml(
    path: Path,
    *,
    index: int,
    ports: NodePorts,
    peers: list[str],
    max_tx_bytes: int,
    timeout_commit: str,
    timeout_propose: str = TIMEOUT_PROPOSE,
    moniker: str | None = None,
) -> None:
    """Rewrite the node's config.toml (written by `cometbft testnet`) for a one-host net.

    tomlkit keeps the template's comments, so the file stays readable for whoever opens it."""
    doc = tomlkit.parse(path.read_text())
    doc["moniker"] = moniker or node_dir_name(index)
    doc["proxy_app"] = ports.abci_address
    doc["abci"] = "socket"

    rpc = doc["rpc"]
    rpc["laddr"] = f"tcp://{HOST}:{ports.rpc}"
    rpc["max_body_bytes"] = rpc_max_body_bytes(max_tx_bytes)
    rpc["pprof_laddr"] = ""
    rpc["grpc_laddr"] = ""

    p2p = doc["p2p"]
    p2p["laddr"] = f"tcp://{HOST}:{ports.p2p}"
    p2p["external_address"] = ""
    p2p["persistent_peers"] = ",".join(peers)
    p2p["allow_duplicate_ip"] = True  # every peer is 127.0.0.1
    p2p["addr_book_strict"] = False  # loopback addresses are not "routable"
    p2p["send_rate"] = P2P_RATE
    p2p["recv_rate"] = P2P_RATE
    p2p["flush_throttle_timeout"] = LOOPBACK_FLUSH_THROTTLE

    mempool = doc["mempool"]
    mempool["max_tx_bytes"] = max_tx_bytes  # must be the same on every node
    mempool["max_txs_bytes"] = max(int(mempool["max_txs_bytes"]), 64 * max_tx_bytes)

    consensus = doc["consensus"]
    consensus["timeout_propose"] = timeout_propose
    consensus["timeout_commit"] = timeout_commit
    consensus["peer_gossip_sleep_duration"] = LOOPBACK_GOSSIP_SLEEP
    consensus["create_empty_blocks"] = True
    consensus["create_empty_blocks_interval"] = "0s"

    doc["tx_index"]["indexer"] = "kv"  # txs by hash: `flchain query tx` and `tx --wait` read their block result
    doc["instrumentation"]["prometheus"] = True  # CometBFT's own metrics, beside the app's
    doc["instrumentation"]["prometheus_listen_addr"] = f"{HOST}:{ports.cometbft_metrics}"
    path.write_text(tomlkit.dumps(doc))


def edit_genesis(path: Path, *, chain_id: str, app_state: dict | None, block_max_bytes: int, max_tx_bytes: int) -> dict:
    """Return the genesis doc `cometbft testnet` wrote with our chain id, sizes and app_state."""
    if block_max_bytes <= 0:
        raise ValueError("block_max_bytes must be positive (-1 would let a block reach 100 MB)")
    if block_max_bytes < max_tx_bytes:
        raise ValueError(f"block_max_bytes ({block_max_bytes}) is smaller than max_tx_bytes ({max_tx_bytes})")
    genesis = json.loads(path.read_text())
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
