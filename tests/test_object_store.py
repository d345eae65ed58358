"""Blobs (the safetensors files a BlobRef names) and the object store they live in.

The format tests need nothing; the store tests share one SeaweedFS server per module, on free loopback
ports, and run in file order: the last one restarts it.
"""

import hashlib
import os
import threading
import time

import boto3
import numpy as np
import pytest
from botocore.config import Config

from client import blobs
from client.object_store import BlobMissing, ObjectStore, StoreUnavailable
from flchain.v1 import types_pb2
from localnet.net import port_free
from localnet.store import PORT_SPAN, SeaweedStore, default_weed

FLOAT32, FIXED32 = types_pb2.DTYPE_FLOAT32, types_pb2.DTYPE_FIXED32


def tensor(name: str, values: np.ndarray) -> types_pb2.Tensor:
    dtype, little_endian = (FLOAT32, "<f4") if values.dtype == np.float32 else (FIXED32, "<i4")
    return types_pb2.Tensor(name=name, shape=values.shape, dtype=dtype, values=values.astype(little_endian).tobytes())


def sample_tensors() -> list[types_pb2.Tensor]:
    rng = np.random.default_rng(7)
    edge_floats = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38], dtype=np.float32)
    return [
        tensor("layer.weight", rng.standard_normal((3, 4)).astype(np.float32)),
        tensor("edges", edge_floats),
        tensor("fixed", np.array([[-(2**31), 2**31 - 1, 0]], dtype=np.int32)),
        tensor("scalar", np.array(5, dtype=np.int32)),
    ]


# -- the format -------------------------------------------------------------------------------


def test_object_key_names_the_digest():
    digest = hashlib.sha256(b"x").digest()
    assert blobs.object_key(digest) == "sha256/" + digest.hex()


def test_encode_gives_the_same_bytes_for_the_same_tensors_in_any_order():
    tensors = sample_tensors()
    assert blobs.encode(tensors) == blobs.encode(sample_tensors()) == blobs.encode(tensors[::-1])


def test_decode_returns_what_was_encoded_bit_for_bit_in_manifest_order():
    tensors = sample_tensors()
    data, ref = blobs.file_of(tensors)
    assert ref.digest == hashlib.sha256(data).digest() and ref.size == len(data)
    assert blobs.decode(data, ref) == tensors
    reordered = tensors[::-1]
    assert blobs.decode(data, blobs.reference(data, reordered)) == reordered


def test_encode_refuses_repeated_names_and_short_values():
    t = sample_tensors()[0]
    with pytest.raises(ValueError, match="repeat"):
        blobs.encode([t, t])
    short = types_pb2.Tensor(name="short", shape=[2, 2], dtype=FLOAT32, values=b"\0" * 12)
    with pytest.raises(ValueError, match="do not fill"):
        blobs.encode([short])


def test_decode_refuses_a_wrong_digest():
    data, ref = blobs.file_of(sample_tensors())
    ref.digest = hashlib.sha256(b"other").digest()
    with pytest.raises(blobs.BlobInvalid, match="another digest"):
        blobs.decode(data, ref)


def test_decode_refuses_a_wrong_size():
    data, ref = blobs.file_of(sample_tensors())
    with pytest.raises(blobs.BlobInvalid, match="bytes, its reference says"):
        blobs.decode(data + b"\0", ref)


@pytest.mark.parametrize("garbage", [b"", b"not a safetensors file", b"\xff" * 64, b"\x10" + b"\0" * 7 + b"{}"])
def test_decode_refuses_garbage(garbage):
    with pytest.raises(blobs.BlobInvalid, match="no safetensors file"):
        blobs.decode(garbage, blobs.reference(garbage, []))


def _renamed(t: types_pb2.Tensor) -> types_pb2.Tensor:
    return types_pb2.Tensor(name=t.name + "_x", shape=t.shape, dtype=t.dtype, values=t.values)


def _reshaped(t: types_pb2.Tensor) -> types_pb2.Tensor:
    return types_pb2.Tensor(name=t.name, shape=[int(np.prod(t.shape))], dtype=t.dtype, values=t.values)


def _retyped(t: types_pb2.Tensor) -> types_pb2.Tensor:
    return types_pb2.Tensor(name=t.name, shape=t.shape, dtype=FIXED32, values=t.values)


@pytest.mark.parametrize(
    "change, complaint",
    [
        (lambda ts: [_renamed(ts[0])] + ts[1:], "manifest names"),
        (lambda ts: ts[1:], "manifest names"),
        (lambda ts: ts + [tensor("extra", np.zeros(2, np.float32))], "manifest names"),
        (lambda ts: [_reshaped(ts[0])] + ts[1:], "shape"),
        (lambda ts: [_retyped(ts[0])] + ts[1:], "manifest says dtype"),
    ],
    ids=["renamed", "missing", "extra", "reshaped", "retyped"],
)
def test_decode_refuses_a_file_that_is_not_its_manifest(change, complaint):
    manifest_tensors = sample_tensors()
    data = blobs.encode(change(sample_tensors()))
    ref = blobs.reference(data, manifest_tensors)  # right digest and size, another manifest
    with pytest.raises(blobs.BlobInvalid, match=complaint):
        blobs.decode(data, ref)


def test_a_store_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("FLCHAIN_STORE_URL", raising=False)
    assert ObjectStore.from_env() is None
    monkeypatch.setenv("FLCHAIN_STORE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("FLCHAIN_STORE_BUCKET", "models")
    store = ObjectStore.from_env()
    assert store is not None and store.endpoint_url == "http://127.0.0.1:9" and store.bucket == "models"


def test_an_unreachable_store_is_unavailable_after_retry_s(closed_port):
    store = ObjectStore(f"http://127.0.0.1:{closed_port}", retry_s=1)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="gave up after 1s"):
        store.get(hashlib.sha256(b"x").digest())
    assert time.monotonic() - started < 5


# -- a real store -----------------------------------------------------------------------------


def free_store_port(port_base) -> int:
    """An S3 port whose store's PORT_SPAN ports are all free (in a block the session hands out once)."""
    for _ in range(50):
        base = port_base(1)
        if all(port_free(p) for p in range(base, base + PORT_SPAN)):
            return base
    raise RuntimeError("no free ports for a store")


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory, port_base):
    if not default_weed().exists():
        pytest.skip(f"SeaweedFS missing at {default_weed()}: run scripts/setup.sh")
    with SeaweedStore(tmp_path_factory.mktemp("store"), free_store_port(port_base)) as server:
        yield server


@pytest.fixture
def store(seaweed) -> ObjectStore:
    return ObjectStore(seaweed.url, retry_s=30)


@pytest.mark.integration
def test_put_then_get_returns_the_bytes_and_counts_them(store):
    data = os.urandom(5 << 20)  # above boto3's multipart threshold: sent in parts
    digest = store.put(data)
    assert digest == hashlib.sha256(data).digest() and store.exists(digest)
    assert store.get(digest, size=len(data)) == data
    assert (store.bytes_put, store.bytes_got) == (len(data), len(data))
    assert store.put(data) == digest and store.bytes_put == len(data)  # already there: not sent again


@pytest.mark.integration
def test_a_blob_travels_through_the_store(store):
    data, ref = blobs.file_of(sample_tensors())
    assert store.put(data) == ref.digest
    assert blobs.decode(store.get(ref.digest, ref.size), ref) == sample_tensors()


@pytest.mark.integration
def test_an_absent_object_is_missing_at_once(store):
    digest = hashlib.sha256(b"never stored").digest()
    assert not store.exists(digest)
    started = time.monotonic()
    with pytest.raises(BlobMissing, match=digest.hex()):
        store.get(digest)
    assert time.monotonic() - started < 2  # the store's answer is final: no retries


@pytest.mark.integration
def test_other_bytes_under_a_digest_are_invalid(seaweed, store):
    data = b"the real bytes" * 1000
    digest = store.put(data)
    s3 = boto3.client(
        "s3",
        endpoint_url=seaweed.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}),
    )
    s3.put_object(Bucket=store.bucket, Key=blobs.object_key(digest), Body=b"forged bytes" * 1000)
    with pytest.raises(blobs.BlobInvalid, match="another digest"):
        store.get(digest)
    with pytest.raises(blobs.BlobInvalid, match="its reference says"):
        store.get(digest, size=len(data))


@pytest.mark.integration
def test_a_get_rides_out_a_store_restart_and_the_objects_survive_it(seaweed, store):
    kept = {store.put(os.urandom(n)): n for n in (1000, 3 << 20)}
    awaited = os.urandom(2 << 20)
    awaited_digest = store.put(awaited)
    seaweed.stop()
    got: list[bytes] = []
    getter = threading.Thread(target=lambda: got.append(store.get(awaited_digest, len(awaited))))
    getter.start()
    time.sleep(1.0)  # the get is retrying against a closed port
    assert not got
    seaweed.start()
    getter.join(timeout=40)
    assert got == [awaited]
    for digest, size in kept.items():
        assert len(store.get(digest, size)) == size
    seaweed.wait_ready()
    assert store.get(store.put(b"after the restart")) == b"after the restart"
