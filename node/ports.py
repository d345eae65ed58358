"""Whether an address can be listened on, or dialled: what a node checks before it starts and while
it waits for its processes and peers."""

import socket

WILDCARD = "0.0.0.0"
LOOPBACK = "127.0.0.1"


def split(address: str) -> tuple[str, int]:
    """Split "tcp://host:port", "host:port" or ":port" into (host, port); no host means all interfaces."""
    host, _, port = address.split("://")[-1].rpartition(":")
    return host or WILDCARD, int(port)


def dialable(host: str) -> str:
    """The host to dial for a service listening on `host`: one on every interface is reached on loopback."""
    return LOOPBACK if host in ("", WILDCARD) else host


def taken(host: str, port: int) -> str | None:
    """Why nothing new can listen at host:port, or None when something can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return None
        except OSError as err:
            return err.strerror or str(err)


def dial(address: str, timeout: float = 2.0) -> str | None:
    """Why a TCP connection to host:port (a listen address: 0.0.0.0 means this machine) fails, or None."""
    host, port = split(address)
    try:
        with socket.create_connection((dialable(host), port), timeout=timeout):
            return None
    except OSError as err:
        return err.strerror or str(err) or type(err).__name__
