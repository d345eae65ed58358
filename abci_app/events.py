"""Events the state machine emits; the ABCI layer turns them into CometBFT events for subscribers."""

from dataclasses import dataclass

from abci_app.address import to_bech32


@dataclass(frozen=True)
class Event:
    type: str
    attributes: tuple[tuple[str, str], ...]


def event(kind: str, **attributes) -> Event:
    """Build an event; bytes values are addresses (shown bech32), lists are comma-joined."""

    def show(value) -> str:
        if isinstance(value, bytes):
            return to_bech32(value) if value else ""  # no address (a verdict that copies nobody)
        if isinstance(value, (list, tuple)):
            return ",".join(show(v) for v in value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return Event(kind, tuple((key, show(value)) for key, value in attributes.items()))
