"""Shared fixtures: the pinned CometBFT binary and free loopback port ranges for localnets."""

import random
import socket
from pathlib import Path

import pytest

from client import endpoints
from localnet import config as lcfg
from localnet.net import port_free

COMETBFT = lcfg.DEFAULT_COMETBFT

# Below Linux's ephemeral range (32768-60999), so outgoing connections do not take our ports.
PORT_LOW, PORT_HIGH = 20000, 32000
_handed_out: set[int] = set()


def free_base_port(validators: int, attempts: int = 200) -> int:
    """A base port B such that every port of a `validators`-node localnet at B is free on 127.0.0.1.

    Bases already handed out in this test session are skipped (their nets may not listen yet)."""
    span = endpoints.PORT_STRIDE * validators
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(PORT_LOW, PORT_HIGH - span, endpoints.PORT_STRIDE)
        block = set(range(base, base + span))
        if block & _handed_out:
            continue
        ports = [p for i in range(validators) for p in endpoints.node_ports(i, base).all()]
        if all(port_free(p) for p in ports):
            _handed_out.update(block)
            return base
    raise RuntimeError(f"no free port range for {validators} nodes in {PORT_LOW}-{PORT_HIGH}")


@pytest.fixture(scope="session")
def cometbft_bin() -> Path:
    """The pinned CometBFT binary; its absence is a failure (run `make setup`), never a skip."""
    if not COMETBFT.exists():
        pytest.fail(f"CometBFT binary missing at {COMETBFT}: run `make setup` (scripts/setup.sh)")
    return COMETBFT


@pytest.fixture(scope="session")
def port_base():
    """Call with the number of validators to get a free base port: port_base(4)."""
    return free_base_port


def _unused_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((endpoints.HOST, 0))
        return sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return _unused_port()


@pytest.fixture
def listen_address() -> str:
    """host:port on loopback for a server a test starts itself."""
    return f"{endpoints.HOST}:{_unused_port()}"
