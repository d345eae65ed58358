"""What a message handler or end-of-block step sees: the state, the params, the height, the events."""

from dataclasses import dataclass, field

from abci_app.events import Event, event
from abci_app.state import State
from flchain.v1 import types_pb2


@dataclass
class Context:
    state: State
    params: types_pb2.Params
    height: int
    events: list[Event] = field(default_factory=list)

    def emit(self, kind: str, **attributes) -> None:
        self.events.append(event(kind, **attributes))
