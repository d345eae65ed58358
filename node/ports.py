"""Whether an address can be listened on, or dialled: what a node checks before it starts and while
it waits for its processes and peers."""

import socket


def split(address: str) -> tuple[str, int]:
    """Split "tcp://host:port", "host:port" or ":port" into (host, port); no host means all interfaces."""
    host, _, port = address.split("://")[-1].rpartition(":")
    return host or "0.0.0.0", int(port)


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
    """Why a TCP connection to host:port fails, or None when it succeeds."""
    host, port = split(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:
        return err.strerror or str(err) or type(err).__name__
