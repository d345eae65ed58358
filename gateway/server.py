"""The Gateway gRPC service: BroadcastTx, typed queries and WatchRounds over one node's RPC.

Every answer comes from the node (ABCI queries over its committed state), so any number of
gateways can serve one chain and a restarted gateway has nothing to recover. Beside it the
server offers gRPC's standard health service (SERVING only while the node answers and is not
catching up) and server reflection (grpcurl and other generic clients need no .proto files).

The server is gRPC's asyncio one: an open WatchRounds stream is a suspended coroutine, not a
thread, so one gateway holds hundreds of watchers while unary calls (each a blocking RPC to the
node, run in a small thread pool) are answered as promptly as with none.
"""

import asyncio
import logging
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from abci_app import query_paths as qp
from abci_app.address import from_bech32
from abci_app.codes import Code
from client.gateway_client import GRPC_OPTIONS
from client.rpc import CometRPC, NodeUnavailable, RPCError
from flchain.v1 import gateway_pb2 as gw
from flchain.v1 import gateway_pb2_grpc, types_pb2
from gateway.feed import RoundFeed, Snapshot

log = logging.getLogger("gateway")

NODE_CALL_THREADS = 32  # blocking RPCs to the node in flight at once (unary calls, first snapshots)

# CometBFT refuses some txs before the app sees them, as JSON-RPC errors; name the gRPC status.
_MEMPOOL_ERRORS = [
    ("already exists in cache", grpc.StatusCode.ALREADY_EXISTS),
    ("mempool is full", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("too large", grpc.StatusCode.INVALID_ARGUMENT),
]
_QUERY_STATUS = {Code.NOT_FOUND: grpc.StatusCode.NOT_FOUND, Code.BAD_ADDRESS: grpc.StatusCode.INVALID_ARGUMENT}


def role_of(rnd: types_pb2.Round, address: bytes | None) -> gw.Role:
    if address is None:
        return gw.ROLE_UNSPECIFIED
    if address in rnd.proposers:
        return gw.ROLE_PROPOSER
    if address in rnd.voters:
        return gw.ROLE_VOTER
    return gw.ROLE_NONE


class GatewayService(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, rpc: CometRPC, feed: RoundFeed, snapshots: "SnapshotBoard"):
        self.rpc = rpc
        self.feed = feed
        self.snapshots = snapshots

    # -- helpers -----------------------------------------------------------------------------

    async def _node(self, context, call):
        """Run a blocking RPC call off the event loop; an unreachable node becomes UNAVAILABLE."""
        try:
            return await asyncio.to_thread(call)
        except NodeUnavailable as err:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        except RPCError as err:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"node error: {err}")

    async def _query(self, context, kind: str, arg: str | int | None = None):
        path = qp.path(kind, arg)
        answer = await self._node(context, lambda: self.rpc.abci_query(path))
        if answer.code:
            status = _QUERY_STATUS.get(answer.code, grpc.StatusCode.FAILED_PRECONDITION)
            await context.abort(status, f"{path}: {answer.log}")
        return qp.ANSWERS[kind].FromString(answer.value)

    @staticmethod
    async def _address(context, text: str) -> str:
        try:
            from_bech32(text)
        except ValueError as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad address {text!r}: {err}")
        return text

    # -- txs ---------------------------------------------------------------------------------

    async def BroadcastTx(self, request, context):
        if not request.tx:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty tx")
        try:
            result = await asyncio.to_thread(self.rpc.broadcast_tx_sync, request.tx)
        except NodeUnavailable as err:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        except RPCError as err:
            text = f"{err.message} {err.data}"
            status = next((s for pattern, s in _MEMPOOL_ERRORS if pattern in text), grpc.StatusCode.FAILED_PRECONDITION)
            await context.abort(status, f"node refused the tx: {err.data or err.message}")
        if result.code:
            log.info("tx %s refused (code %d): %s", result.hash[:12], result.code, result.log)
        return gw.BroadcastTxResponse(code=result.code, codespace=result.codespace, log=result.log, hash=result.hash)

    # -- queries -----------------------------------------------------------------------------

    async def GetNodeInfo(self, request, context):
        status = await self._node(context, self.rpc.status)
        sync = status["sync_info"]
        return gw.NodeInfo(
            chain_id=status["node_info"]["network"],
            moniker=status["node_info"]["moniker"],
            latest_height=int(sync["latest_block_height"]),
            latest_app_hash=bytes.fromhex(sync["latest_app_hash"] or ""),
            catching_up=bool(sync["catching_up"]),
        )

    async def GetParams(self, request, context):
        return await self._query(context, qp.PARAMS)

    async def GetRound(self, request, context):
        return await self._query(context, qp.ROUND, request.id or None)  # 0: the current round

    async def GetParticipant(self, request, context):
        return await self._query(context, qp.PARTICIPANT, await self._address(context, request.address))

    async def ListParticipants(self, request, context):
        return await self._query(context, qp.PARTICIPANTS)

    async def GetAccount(self, request, context):
        return await self._query(context, qp.ACCOUNT, await self._address(context, request.address))

    async def GetModel(self, request, context):
        return await self._query(context, qp.MODEL)

    async def GetCandidate(self, request, context):
        return await self._query(context, qp.CANDIDATE)

    async def GetUpdates(self, request, context):
        return await self._query(context, qp.UPDATES)

    # -- stream ------------------------------------------------------------------------------

    async def WatchRounds(self, request, context):
        address = from_bech32(await self._address(context, request.address)) if request.address else None
        snapshot = self.feed.latest()
        if snapshot is None:  # the feed has not seen the chain yet: read it now
            await self._node(context, self.feed.refresh)
            snapshot = self.feed.latest()
        seen = 0
        try:
            while True:  # until the client goes away or the server stops: gRPC then cancels this coroutine
                if snapshot is not None:
                    seen = snapshot.version
                    yield self._event(snapshot, address)
                snapshot = await self.snapshots.newer_than(seen)
        except asyncio.CancelledError:
            return  # the stream is over; nothing to report

    @staticmethod
    def _event(snapshot: Snapshot, address: bytes | None) -> gw.RoundEvent:
        event = gw.RoundEvent(height=snapshot.height, round=snapshot.round, role=role_of(snapshot.round, address))
        if snapshot.finished is not None:
            event.finished.CopyFrom(snapshot.finished)
        return event


class SnapshotBoard:
    """The feed's snapshots on the event loop: the feed's thread rings, every waiting stream wakes."""

    def __init__(self, feed: RoundFeed, loop: asyncio.AbstractEventLoop):
        self.feed = feed
        self._changed = asyncio.Condition()
        feed.on_publish(lambda _snapshot: asyncio.run_coroutine_threadsafe(self._ring(), loop))

    async def _ring(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def newer_than(self, version: int) -> Snapshot:
        def newer() -> bool:
            latest = self.feed.latest()
            return latest is not None and latest.version > version

        async with self._changed:
            await self._changed.wait_for(newer)
        latest = self.feed.latest()
        assert latest is not None
        return latest


GATEWAY_SERVICE = gw.DESCRIPTOR.services_by_name["Gateway"].full_name
HEALTH_POLL_S = 1.0


def node_serving(rpc: CometRPC) -> bool:
    """Whether the node can answer for the chain: reachable and not catching up."""
    try:
        return not rpc.status()["sync_info"]["catching_up"]
    except (NodeUnavailable, RPCError, KeyError):
        return False


class GatewayServer:
    """The gateway for the node at rpc_url, served on `listen` (host:port) from an event loop in a
    thread of its own, so that callers (the CLI, tests) start and stop it like any server.

    tls: (certificate chain, private key) in PEM: serve TLS only (clients verify the certificate)."""

    def __init__(self, rpc_url: str, listen: str, tls: tuple[bytes, bytes] | None = None):
        self.rpc = CometRPC(rpc_url)
        self.listen = listen
        self.tls = tls
        self.feed = RoundFeed(self.rpc)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._grace: float | None = 2.0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="gateway", daemon=True)

    def start(self) -> "GatewayServer":
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self, grace: float | None = 2.0) -> None:
        """Let calls in flight finish for up to `grace` seconds (None: cancel them now)."""
        if self._loop is not None and self._stopping is not None:
            self._grace = grace
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self.feed.stop()

    def wait(self) -> None:
        self._thread.join()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(futures.ThreadPoolExecutor(NODE_CALL_THREADS, thread_name_prefix="gateway-node"))
        try:
            server, health_servicer = self._build(loop)
            for service in ("", GATEWAY_SERVICE):  # until the first look at the node
                await health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
            await server.start()
        except BaseException as err:
            self._error = err
            self._ready.set()
            return
        self.feed.start()
        self._loop, self._stopping = loop, asyncio.Event()
        self._ready.set()
        follow = asyncio.create_task(self._follow_node_health(health_servicer))
        await self._stopping.wait()
        follow.cancel()
        await server.stop(self._grace)

    def _build(self, loop: asyncio.AbstractEventLoop) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
        server = grpc.aio.server(options=GRPC_OPTIONS)
        service = GatewayService(self.rpc, self.feed, SnapshotBoard(self.feed, loop))
        gateway_pb2_grpc.add_GatewayServicer_to_server(service, server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection((GATEWAY_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        try:
            if self.tls is None:
                port = server.add_insecure_port(self.listen)
            else:
                chain, key = self.tls
                port = server.add_secure_port(self.listen, grpc.ssl_server_credentials([(key, chain)]))
        except RuntimeError as err:
            raise OSError(f"cannot listen on {self.listen}: {err}") from None
        if port == 0:
            raise OSError(f"cannot listen on {self.listen}")
        return server, health_servicer

    async def _follow_node_health(self, servicer: health.aio.HealthServicer) -> None:
        """Publish the node's state for the whole server and the Gateway, once a second."""
        while True:
            serving = await asyncio.to_thread(node_serving, self.rpc)
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            for service in ("", GATEWAY_SERVICE):
                await servicer.set(service, status)
            await asyncio.sleep(HEALTH_POLL_S)
