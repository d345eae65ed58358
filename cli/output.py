"""How the CLI prints protobuf answers: readable text by default, JSON with `-o json`."""

import base64
import json

from google.protobuf import json_format
from google.protobuf.message import Message

from abci_app.address import to_bech32

ADDRESS_FIELDS = {"address", "proposers", "voters", "submitted", "voter", "contributors", "proposer", "sender"}


def readable(message: Message) -> dict:
    """Protobuf -> JSON-ready dict with bech32 addresses instead of base64 bytes."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )  # show zeros, e.g. version 0

    def fix(node, field=""):
        if isinstance(node, dict):
            return {k: fix(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v, field) for v in node]
        if field in ADDRESS_FIELDS:
            return to_bech32(base64.b64decode(node))
        return node

    return fix(data)


def summarize_tensors(data: dict) -> dict:
    """Text output shows tensors as name/shape, not megabytes of base64."""
    for field in ("tensors", "delta"):
        if field in data:
            data[field] = [f"{t['name']} {t.get('shape', [])}" for t in data[field]]
    return data


def show(data: dict, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
        return

    def emit(node: dict, indent: int = 0) -> None:
        pad = "  " * indent
        for key, value in node.items():
            if isinstance(value, dict):
                print(f"{pad}{key}:")
                emit(value, indent + 1)
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                print(f"{pad}{key}:")
                for item in value:
                    print(f"{pad}- " + ", ".join(f"{k}: {v}" for k, v in item.items()))
            elif isinstance(value, list):
                print(f"{pad}{key}: " + ", ".join(map(str, value)))
            else:
                print(f"{pad}{key}: {value}")

    emit(data)
