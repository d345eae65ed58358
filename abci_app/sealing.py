"""Sealed updates and ballots: what a party commits to before anyone's work is visible, and the
check that its reveal matches (MsgCommit in proto/flchain/v1/tx.proto says when each happens).

A commitment binds its kind, round and sender as well as the content and a secret salt, so a
commitment copied from another party can never be revealed by the copier (its own address gives
another digest), nor one from an earlier round be reused, nor the content guessed from the digest.
The content digests read the message as it travelled (names, shapes, dtype, bytes), so a client
computes them from what it sends, with no conversion of its own.
"""

import hashlib
import struct
from collections.abc import Iterable, Sequence

DOMAIN = b"flchain/commit/v1"
UPDATE, BALLOT = b"update", b"ballot"
SALT_BYTES = 32
DIGEST_BYTES = 32


def update_digest(num_samples: int, tensors: Iterable[tuple[str, Sequence[int], int, bytes]]) -> bytes:
    """sha256 of an update: num_samples, then per tensor its name, shape, dtype and value bytes."""
    h = hashlib.sha256(struct.pack(">Q", num_samples))
    for name, shape, dtype, values in tensors:
        encoded = name.encode()
        h.update(struct.pack(">I", len(encoded)) + encoded)
        h.update(struct.pack(f">I{len(shape)}I", len(shape), *shape))
        h.update(struct.pack(">IQ", dtype, len(values)) + values)
    return h.digest()


def reference_digest(
    num_samples: int, blob_digest: bytes, size: int, manifest: Iterable[tuple[str, Sequence[int], int]]
) -> bytes:
    """sha256 of an update by reference: num_samples, the file's digest and size, then its manifest."""
    h = hashlib.sha256(b"ref" + struct.pack(">Q", num_samples) + blob_digest + struct.pack(">Q", size))
    for name, shape, dtype in manifest:
        encoded = name.encode()
        h.update(struct.pack(">I", len(encoded)) + encoded)
        h.update(struct.pack(f">I{len(shape)}II", len(shape), *shape, dtype))
    return h.digest()


def ballot_digest(loss: int, start_loss: int, scores: Sequence[int], alignments: Sequence[int] = ()) -> bytes:
    """sha256 of a ballot: its two losses, its scores and its alignments, each list after its length."""
    h = hashlib.sha256(struct.pack(f">QQI{len(scores)}q", loss, start_loss, len(scores), *scores))
    h.update(struct.pack(f">I{len(alignments)}i", len(alignments), *alignments))
    return h.digest()


def commitment(kind: bytes, round_id: int, sender: bytes, salt: bytes, content_digest: bytes) -> bytes:
    """The digest a party commits to; revealing (salt, content) later proves what it committed."""
    return hashlib.sha256(DOMAIN + kind + struct.pack(">Q", round_id) + sender + salt + content_digest).digest()
