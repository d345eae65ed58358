"""Where a node listens: CometBFT's default ports plus the gateway's, and node i's ports on one host.

Node i with base port B (default 26656, CometBFT's own defaults for node 0):
    p2p   B + 100*i        (26656, 26756, 26856, ...)
    RPC   B + 1 + 100*i    (26657, 26757, ...)
    ABCI  B + 2 + 100*i    (26658, 26758, ...)  the app listens here, cometbft dials it
    gRPC  B + 3 + 100*i    (26659, 26759, ...)  the participants' gateway of node i
    app metrics       B + 4 + 100*i  (26660, ...)  the flchain app's Prometheus endpoint
    cometbft metrics  B + 5 + 100*i  (26661, ...)  CometBFT's own Prometheus endpoint
"""

from dataclasses import dataclass

HOST = "127.0.0.1"
BASE_PORT = 26656
PORT_STRIDE = 100  # ports of node i are BASE_PORT + PORT_STRIDE*i + offset
P2P_OFFSET, RPC_OFFSET, ABCI_OFFSET, GATEWAY_OFFSET, APP_METRICS_OFFSET, COMETBFT_METRICS_OFFSET = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class NodePorts:
    p2p: int
    rpc: int
    abci: int
    gateway: int
    app_metrics: int
    cometbft_metrics: int

    @property
    def rpc_url(self) -> str:
        return f"http://{HOST}:{self.rpc}"

    @property
    def abci_address(self) -> str:
        return f"tcp://{HOST}:{self.abci}"

    @property
    def p2p_address(self) -> str:
        return f"{HOST}:{self.p2p}"

    @property
    def gateway_address(self) -> str:
        return f"{HOST}:{self.gateway}"

    @property
    def app_metrics_url(self) -> str:
        return f"http://{HOST}:{self.app_metrics}/metrics"

    @property
    def cometbft_metrics_url(self) -> str:
        return f"http://{HOST}:{self.cometbft_metrics}/metrics"

    def all(self) -> tuple[int, ...]:
        return (self.p2p, self.rpc, self.abci, self.gateway, self.app_metrics, self.cometbft_metrics)


def node_ports(index: int, base_port: int = BASE_PORT) -> NodePorts:
    first = base_port + PORT_STRIDE * index
    return NodePorts(
        p2p=first + P2P_OFFSET,
        rpc=first + RPC_OFFSET,
        abci=first + ABCI_OFFSET,
        gateway=first + GATEWAY_OFFSET,
        app_metrics=first + APP_METRICS_OFFSET,
        cometbft_metrics=first + COMETBFT_METRICS_OFFSET,
    )


DEFAULTS = node_ports(0)
DEFAULT_NODE = DEFAULTS.rpc_url  # a node's CometBFT RPC
DEFAULT_GATEWAY = DEFAULTS.gateway_address  # a node's gRPC gateway
DEFAULT_ABCI = DEFAULTS.abci_address  # where a node's app listens for CometBFT
