"""Account addresses: the first 20 bytes of sha256(ed25519 public key), shown as bech32 (Cosmos style)."""

import hashlib

import bech32

PREFIX = "flc"
ADDRESS_LEN = 20


def address_from_public_key(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()[:ADDRESS_LEN]


def to_bech32(address: bytes) -> str:
    return str(bech32.bech32_encode(PREFIX, bech32.convertbits(address, 8, 5) or []))


def from_bech32(text: str) -> bytes:
    """Decode `flc1...`; raises ValueError with a readable reason."""
    prefix, data = bech32.bech32_decode(text)
    if prefix is None or data is None:
        raise ValueError(f"not a bech32 address: {text!r}")
    if prefix != PREFIX:
        raise ValueError(f"address prefix is {prefix!r}, expected {PREFIX!r}")
    raw = bytes(bech32.convertbits(data, 5, 8, False) or b"")
    if len(raw) != ADDRESS_LEN:
        raise ValueError(f"address must be {ADDRESS_LEN} bytes, got {len(raw)}")
    return raw
