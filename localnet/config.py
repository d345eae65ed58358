"""Everything a localnet's layout depends on, in one place: paths and config values (node i's
ports are client.endpoints.node_ports(i, base_port)).

File layout under HOME (default <repo>/.localnet):
    HOME/node<i>/            node i's home, as `flchain init` writes it (node.home)
    HOME/logs/node<i>-app.log, node<i>-cometbft.log, node<i>-gateway.log
    HOME/store/              the object store's data and log (`up(store=True)`: SeaweedFS, S3 API)
    HOME/pids.json           the processes `up` started (deleted by `down`)
"""

from node.config import REPO_ROOT, default_cometbft

DEFAULT_HOME = REPO_ROOT / ".localnet"
DEFAULT_COMETBFT = default_cometbft()
DEFAULT_CHAIN_ID = "flchain-localnet"
DEFAULT_VALIDATORS = 4

# Consensus timing for one host (node.config has the sizes and the timing between machines). On
# loopback a message takes well under a millisecond, so the p2p flush throttle and the consensus
# gossip sleep (100 ms each by default, tuned for the internet) are what make a block slow; 10 ms
# each lets a block follow the last one by little more than timeout_commit.
TIMEOUT_COMMIT = "100ms"
LOOPBACK_GOSSIP_INTERVAL = "10ms"

LOG_DIR = "logs"
STORE_DIR = "store"
# The object store's S3 port is BASE_PORT + STORE_OFFSET, its other ports just above it
# (localnet.store.PORT_SPAN): inside node 0's block of ports, which uses offsets 0-5.
STORE_OFFSET = 50
PIDS_FILE = "pids.json"


def node_dir_name(index: int) -> str:
    return f"node{index}"
