"""Participant keys: ed25519, saved as JSON files readable only by their owner."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from abci_app.address import address_from_public_key, to_bech32


@dataclass(frozen=True)
class Key:
    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> "Key":
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> "Key":
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def address(self) -> bytes:
        return address_from_public_key(self.public_key)

    @property
    def bech32(self) -> str:
        return to_bech32(self.address)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def seed(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    def save(self, path: Path) -> None:
        """Write once, mode 0600; never overwrite an existing key file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(
                {
                    "name": self.name,
                    "address": self.bech32,
                    "public_key": self.public_key.hex(),
                    "private_key": self.seed().hex(),
                },
                f,
                indent=2,
            )

    @classmethod
    def load(cls, path: Path) -> "Key":
        data = json.loads(path.read_text())
        return cls.from_seed(data["name"], bytes.fromhex(data["private_key"]))
