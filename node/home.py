"""A node's home folder: where each file lives, the node's identity, and its flchain settings.

HOME/config/config.toml, genesis.json, node_key.json, priv_validator_key.json   CometBFT's
HOME/config/flchain.toml    the app's ABCI address and metrics, the gateway's listen address, TLS
HOME/data/                  CometBFT's blocks and state
HOME/app/state.sqlite       the flchain app's state
HOME/logs/app.log, cometbft.log, gateway.log   (written by `flchain start`)
"""

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import tomlkit

SETTINGS_FILE = "flchain.toml"


@dataclass(frozen=True)
class NodeSettings:
    """What `flchain start` needs beyond CometBFT's config.toml."""

    abci: str  # where the app listens and cometbft dials: tcp://127.0.0.1:26658
    node_rpc: str  # the node's RPC as the gateway reaches it: http://127.0.0.1:26657
    gateway_listen: str  # host:port of the participants' gRPC gateway
    app_metrics_listen: str  # host:port of the app's Prometheus endpoint ("" for none)
    tls_cert: str = ""  # PEM files: the gateway serves TLS only when both are set
    tls_key: str = ""


class NodeHome:
    def __init__(self, path: Path):
        self.path = Path(path).resolve()

    @property
    def config_dir(self) -> Path:
        return self.path / "config"

    @property
    def config_toml(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def genesis(self) -> Path:
        return self.config_dir / "genesis.json"

    @property
    def settings_path(self) -> Path:
        return self.config_dir / SETTINGS_FILE

    @property
    def app_dir(self) -> Path:
        return self.path / "app"

    @property
    def log_dir(self) -> Path:
        return self.path / "logs"

    def log_path(self, which: str) -> Path:
        """which: "app", "cometbft" or "gateway"."""
        return self.log_dir / f"{which}.log"

    def exists(self) -> bool:
        return self.config_toml.exists() and self.settings_path.exists()

    # -- settings ----------------------------------------------------------------------------

    def write_settings(self, settings: NodeSettings) -> None:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("flchain's own settings of this node; CometBFT's are in config.toml"))
        for name, value in asdict(settings).items():
            doc[name] = value
        self.settings_path.write_text(tomlkit.dumps(doc))

    def settings(self) -> NodeSettings:
        values = tomlkit.parse(self.settings_path.read_text()).unwrap()
        return NodeSettings(**{k: v for k, v in values.items() if k in NodeSettings.__dataclass_fields__})

    # -- identity ----------------------------------------------------------------------------

    def node_id(self) -> str:
        """CometBFT's node ID: hex of the first 20 bytes of sha256(the node key's ed25519 public key)."""
        key = json.loads((self.config_dir / "node_key.json").read_text())
        public = base64.b64decode(key["priv_key"]["value"])[32:]  # ed25519 private key = seed || public
        return hashlib.sha256(public).digest()[:20].hex()

    def moniker(self) -> str:
        return str(tomlkit.parse(self.config_toml.read_text())["moniker"])

    def p2p_address(self) -> str:
        """host:port that peers dial: external_address if set, else the p2p listen address."""
        p2p = tomlkit.parse(self.config_toml.read_text())["p2p"]
        address = str(p2p["external_address"]) or str(p2p["laddr"])
        return address.removeprefix("tcp://")

    def peer_address(self) -> str:
        """NODE_ID@HOST:PORT: what other nodes put in their persistent peers."""
        return f"{self.node_id()}@{self.p2p_address()}"

    def validator(self, power: int = 10) -> dict:
        """This node's entry for the `validators` list of genesis.json."""
        key = json.loads((self.config_dir / "priv_validator_key.json").read_text())
        return {"address": key["address"], "pub_key": key["pub_key"], "power": str(power), "name": self.moniker()}
