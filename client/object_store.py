"""Blobs of models federated by reference live in an S3-compatible object store: this is the participants' client.

Objects are content-addressed (key client.blobs.object_key(sha256 of the bytes)), so `get` checks what it
fetched against the digest it asked for, and a put of the same bytes twice is harmless. Calls that fail
because the store is unreachable or overloaded (connection errors, timeouts, 5xx) are retried with
exponential backoff until `retry_s` seconds have passed; an answer that the object is absent is final.
"""

import hashlib
import io
import ipaddress
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from client.blobs import BlobInvalid, object_key

log = logging.getLogger("flchain.store")

T = TypeVar("T")

DEFAULT_BUCKET = "flchain"
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
READ_CHUNK_BYTES = 1 << 20
TRANSIENT_CODES = {"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException"}
MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


class StoreUnavailable(Exception):
    """The object store did not answer, even after retrying."""


class BlobMissing(Exception):
    """The object store answered that it holds no object under the key asked for."""


def _status(err: ClientError) -> int:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _transient(err: BaseException) -> bool:
    if isinstance(err, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return True
    return isinstance(err, ClientError) and (_status(err) >= 500 or _code(err) in TRANSIENT_CODES)


def _missing(err: ClientError) -> bool:
    return _status(err) == 404 or _code(err) in MISSING_CODES


def _is_loopback(url: str | None) -> bool:
    host = urlparse(url).hostname if url else None
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ObjectStore:
    """One bucket of an S3-compatible store; thread-safe (boto3 clients are)."""

    def __init__(self, endpoint_url: str | None, bucket: str = DEFAULT_BUCKET, retry_s: float = 30.0):
        """endpoint_url: e.g. http://127.0.0.1:8333 for a local SeaweedFS; None for AWS S3 itself."""
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.retry_s = retry_s
        self.bytes_put = 0
        self.bytes_got = 0
        self._count_lock = threading.Lock()
        session = boto3.session.Session()
        self._region = session.region_name or "us-east-1"
        credentials: dict[str, str] = {}
        if session.get_credentials() is None and _is_loopback(endpoint_url):
            # A local SeaweedFS configured without identities accepts any signature; boto3 still needs a key to sign.
            credentials = {"aws_access_key_id": "flchain", "aws_secret_access_key": "flchain"}
        config = Config(
            s3={"addressing_style": "path"},  # bucket in the path: a local store has no per-bucket host names
            retries={"total_max_attempts": 1},  # the retries (and their deadline) are ours, below
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
        )
        self._client = session.client(
            "s3", endpoint_url=endpoint_url, region_name=self._region, config=config, **credentials
        )

    @classmethod
    def from_env(cls, url: str | None = None) -> "ObjectStore | None":
        """The store at `url`, else the one FLCHAIN_STORE_URL names (bucket FLCHAIN_STORE_BUCKET, default
        flchain); None if neither is set."""
        url = url or os.environ.get("FLCHAIN_STORE_URL")
        if not url:
            return None
        return cls(url, bucket=os.environ.get("FLCHAIN_STORE_BUCKET", DEFAULT_BUCKET))

    def __repr__(self) -> str:
        return f"ObjectStore({self.endpoint_url or 'AWS S3'}, bucket={self.bucket!r})"

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """call(), retried while the store is unreachable; StoreUnavailable once retry_s has passed."""

        def say(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome else None
            log.warning(
                "%r: %s failed (%s); retry %d in %.1fs", self, what, err, state.attempt_number, state.upcoming_sleep
            )

        retrying = Retrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_delay(self.retry_s),
            wait=wait_exponential(multiplier=0.1, max=3),
            reraise=True,
            before_sleep=say,
        )
        try:
            return retrying(call)
        except Exception as err:
            if _transient(err):
                raise StoreUnavailable(
                    f"{self!r} unreachable ({what}, gave up after {self.retry_s:g}s): {err}"
                ) from err
            raise

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists."""
        self._retrying(f"create bucket {self.bucket}", self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as err:
            if not _missing(err):
                raise
        where: dict[str, Any] = {}
        if self._region != "us-east-1":  # S3's one region that refuses to be named here
            where = {"CreateBucketConfiguration": {"LocationConstraint": self._region}}
        try:
            self._client.create_bucket(Bucket=self.bucket, **where)
        except ClientError as err:
            if _code(err) != "BucketAlreadyOwnedByYou":  # another client created it meanwhile
                raise

    def put(self, data: bytes) -> bytes:
        """Store `data` under its digest and return the digest (sha256). An object already there with
        the same length is not sent again: its key names its bytes (every aggregator of a round stores
        the same model, and the store would keep each copy until it compacts)."""
        digest = hashlib.sha256(data).digest()
        key = object_key(digest)
        if self._retrying(f"head {key}", lambda: self._size(key)) == len(data):
            return digest
        # boto3's transfer manager sends objects over 8 MiB in 8 MiB parts, 10 at once, a few parts in memory at a time
        self._retrying(f"put {key}", lambda: self._client.upload_fileobj(io.BytesIO(data), self.bucket, key))
        with self._count_lock:
            self.bytes_put += len(data)
        return digest

    def get(self, digest: bytes, size: int | None = None) -> bytes:
        """The bytes stored under `digest`, checked against it (and against `size` if given).

        BlobMissing if the store holds no such object, BlobInvalid if what it holds is not those bytes."""
        key = object_key(digest)
        data = self._retrying(f"get {key}", lambda: self._read(key, size))
        if hashlib.sha256(data).digest() != digest:
            raise BlobInvalid(f"object {key} in {self!r} holds other bytes: they hash to another digest")
        with self._count_lock:
            self.bytes_got += len(data)
        return data

    def _read(self, key: str, size: int | None) -> bytes:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _missing(err):
                raise BlobMissing(f"no object {key} in {self!r}") from None
            raise
        length = response["ContentLength"]
        if size is not None and length != size:
            response["Body"].close()
            raise BlobInvalid(f"object {key} in {self!r} is {length} bytes, its reference says {size}")
        # Chunks then one join: at most two copies of the object in memory, and only while joining.
        return b"".join(response["Body"].iter_chunks(READ_CHUNK_BYTES))

    def exists(self, digest: bytes) -> bool:
        key = object_key(digest)
        return self._retrying(f"head {key}", lambda: self._head(key))

    def _head(self, key: str) -> bool:
        return self._size(key) is not None

    def _size(self, key: str) -> int | None:
        """The stored object's length, or None if there is none."""
        try:
            return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as err:
            if _missing(err):
                return None
            raise
