"""A local S3-compatible object store (SeaweedFS) for models federated by reference, run like the localnet's nodes.

One `weed server` process holds a master, a volume server, a filer and the S3 gateway. Every port it opens
is set from the S3 port, so several stores and a localnet can share a host:
    S3 P, S3 gRPC P+1, master P+2 (gRPC P+3), volume P+4 (gRPC P+5), filer P+6 (gRPC P+7)
Its data (volumes, the filer's metadata, the master's state in m<master port>) and its log (weed.log) live in
data_dir, so a store restarted on the same data_dir and port serves the objects it held.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

from client.object_store import DEFAULT_BUCKET, ObjectStore, StoreUnavailable
from localnet.logs import tail
from node.config import REPO_ROOT

PROJECT_WEED = REPO_ROOT / ".bin" / "weed"  # where scripts/setup.sh builds the pinned SeaweedFS
LOG_FILE = "weed.log"
PORT_SPAN = 8  # ports P .. P+7, see the module docstring
# Volumes of 256 MB, at most 64 of them (16 GB, a few rounds of a 100M-parameter model; a volume takes disk
# only as it fills), created two at a time (SeaweedFS's default of seven at once wastes them on small stores).
# The store keeps every round's files: pruning old ones is a lifecycle rule of the operator's store.
VOLUME_SIZE_LIMIT_MB = 256
MAX_VOLUMES = 64
VOLUMES_PER_GROWTH = 2
# Go's heap otherwise grows to ~1 GB while objects stream through; with this soft cap weed peaks near 400 MB
# at the same throughput ($GOMEMLIMIT overrides it).
GO_MEMORY_LIMIT = "512MiB"
# weed stops its volume server before its filer, which then retries flushing its metadata-change log for ~15 s.
# That log feeds only filer replication (unused here); the objects and the filer's store are on disk by then.
STOP_GRACE_S = 2.0
# What wait_ready writes: a blob that names itself, like any other (an empty one would not reach a volume).
PROBE = b"flchain store probe\n"


class StoreError(RuntimeError):
    """The store's process failed to start or died."""


def default_weed() -> Path:
    """$WEED, else the binary setup built in the project, else `weed` on PATH."""
    if os.environ.get("WEED"):
        return Path(os.environ["WEED"])
    if PROJECT_WEED.exists():
        return PROJECT_WEED
    found = shutil.which("weed")
    return Path(found) if found else PROJECT_WEED


class SeaweedStore:
    """A SeaweedFS server on `host`, its S3 endpoint at s3_port (and its other ports just above, see PORT_SPAN)."""

    def __init__(
        self,
        data_dir: Path,
        s3_port: int,
        host: str = "127.0.0.1",
        weed: Path | None = None,
        bucket: str = DEFAULT_BUCKET,
    ):
        self.data_dir = Path(data_dir)
        self.s3_port = s3_port
        self.host = host
        self.weed = weed or default_weed()
        self.bucket = bucket
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def pid(self) -> int:
        """The weed process's id (it leads its own process group); StoreError if not started."""
        if self._proc is None:
            raise StoreError(f"store at {self.url} was not started")
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def argv(self) -> list[str]:
        p = self.s3_port
        return [
            str(self.weed),
            "server",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-s3.port={p}",
            f"-s3.port.grpc={p + 1}",
            f"-master.port={p + 2}",
            f"-master.port.grpc={p + 3}",
            f"-volume.port={p + 4}",
            f"-volume.port.grpc={p + 5}",
            f"-filer.port={p + 6}",
            f"-filer.port.grpc={p + 7}",
            "-s3",
            "-filer",
            "-s3.port.iceberg=0",  # catalogs this project does not use: no ports of their own
            "-s3.port.lance=0",
            "-master.telemetry=false",  # on by default: it would report to seaweedfs.com
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
            f"-volume.max={MAX_VOLUMES}",
            "-master.electionTimeout=1s",  # the lone master elects itself; 10 s made each restart wait 10-20 s
            "-volume.preStopSeconds=0",  # a cluster's grace for moving load away; one server has none to move to
        ]

    def start(self) -> None:
        if self.running():
            raise StoreError(f"store at {self.url} is already running")
        if not self.weed.exists():
            raise StoreError(f"SeaweedFS binary missing at {self.weed}: run scripts/setup.sh (or set WEED)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "GOMEMLIMIT": GO_MEMORY_LIMIT,
            **os.environ,
            "WEED_MASTER_VOLUME_GROWTH_COPY_1": str(VOLUMES_PER_GROWTH),  # master.toml's key, as weed reads env
        }
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== store: starting {' '.join(self.argv())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # a Ctrl-C meant for the caller reaches weed only through stop()
                env=env,
            )

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the bucket exists and a write lands; StoreError if weed dies or time runs out.

        weed serves reads about 2 s after it starts, but holds writes until its filer has joined the master
        (some 9 s on a fresh data_dir) and, after a restart, through the master's warm-up (15 s more)."""
        probe = ObjectStore(self.url, bucket=self.bucket, retry_s=0)
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.running():
                raise StoreError(f"weed exited before its store was ready: {tail(self.log_path)}")
            try:
                probe.ensure_bucket()
                probe.put(PROBE)
                return
            except StoreUnavailable as err:
                if time.monotonic() > deadline:
                    raise StoreError(f"store at {self.url} not ready after {timeout_s:g}s: {err}") from None
            time.sleep(0.2)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> "SeaweedStore":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
