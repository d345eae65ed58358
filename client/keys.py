"""Participant keys: ed25519, saved as JSON files readable only by their owner.

A key file carries the name, address and public key in clear (so a keyring lists without a
passphrase) and the private key either encrypted with a passphrase (the default: PKCS#8 with the
best encryption the cryptography library offers) or, for localnets and tests only, in clear
(the "test" backend, as Cosmos names it).
"""

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

    def to_json(self, passphrase: str | None) -> dict:
        """The key file's content: encrypted with the passphrase, or in clear (test backend) when None."""
        data = {"name": self.name, "address": self.bech32, "public_key": self.public_key.hex()}
        if passphrase is None:
            return {**data, "backend": TEST_BACKEND, "private_key": self.seed().hex()}
        if not passphrase:
            raise KeyFileError("an empty passphrase protects nothing; use the test backend for a throwaway key")
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
        return {**data, "backend": FILE_BACKEND, "encrypted_private_key": pem.decode()}

    @classmethod
    def from_json(cls, data: dict, passphrase: str | None = None) -> "Key":
        if "private_key" in data:
            key = cls.from_seed(data["name"], bytes.fromhex(data["private_key"]))
        else:
            if passphrase is None:
                raise KeyLocked(f"key {data['name']!r} is encrypted: a passphrase is needed")
            try:
                private = serialization.load_pem_private_key(
                    data["encrypted_private_key"].encode(), password=passphrase.encode()
                )
            except (ValueError, TypeError):
                raise KeyFileError(f"wrong passphrase for key {data['name']!r}") from None
            if not isinstance(private, Ed25519PrivateKey):
                raise KeyFileError(f"key {data['name']!r} is not an ed25519 key")
            key = cls(data["name"], private)
        if key.bech32 != data.get("address", key.bech32):
            raise KeyFileError(f"key file {data['name']!r} is corrupt: its private key is not its address's")
        return key

    def save(self, path: Path, passphrase: str | None = None) -> None:
        """Write once, mode 0600; never overwrite an existing key file."""
        write_key_file(path, self.to_json(passphrase))

    @classmethod
    def load(cls, path: Path, passphrase: str | None = None) -> "Key":
        return cls.from_json(json.loads(path.read_text()), passphrase)


TEST_BACKEND, FILE_BACKEND = "test", "file"


class KeyFileError(ValueError):
    """A key file that cannot be used: wrong passphrase, corrupt, or the wrong kind of key."""


class KeyLocked(KeyFileError):
    """An encrypted key was opened without a passphrase."""


def write_key_file(path: Path, data: dict) -> None:
    """Create a key file, mode 0600, refusing to overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)


def read_public(path: Path) -> dict:
    """name, address, public key and backend of a key file, without opening the private key."""
    data = json.loads(path.read_text())
    backend = data.get("backend", TEST_BACKEND if "private_key" in data else FILE_BACKEND)
    return {"name": data["name"], "address": data["address"], "public_key": data["public_key"], "backend": backend}
