"""The Gateway gRPC service: BroadcastTx, typed queries and WatchRounds over one node's RPC.

Every answer comes from the node (ABCI queries over its committed state), so any number of
gateways can serve one chain and a restarted gateway has nothing to recover. Beside it the
server offers gRPC's standard health service (SERVING only while the node answers and is not
catching up) and server reflection (grpcurl and other generic clients need no .proto files).
"""

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

WATCH_POLL_S = 1.0  # how often a waiting stream checks that its client is still there

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
    def __init__(self, rpc: CometRPC, feed: RoundFeed):
        self.rpc = rpc
        self.feed = feed

    # -- helpers -----------------------------------------------------------------------------

    def _node(self, context, call):
        """Run an RPC call; an unreachable node becomes UNAVAILABLE (clients retry that)."""
        try:
            return call()
        except NodeUnavailable as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        except RPCError as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"node error: {err}")

    def _query(self, context, kind: str, arg: str | int | None = None):
        path = qp.path(kind, arg)
        answer = self._node(context, lambda: self.rpc.abci_query(path))
        if answer.code:
            context.abort(_QUERY_STATUS.get(answer.code, grpc.StatusCode.FAILED_PRECONDITION), f"{path}: {answer.log}")
        return qp.ANSWERS[kind].FromString(answer.value)

    @staticmethod
    def _address(context, text: str) -> str:
        try:
            from_bech32(text)
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad address {text!r}: {err}")
        return text

    # -- txs ---------------------------------------------------------------------------------

    def BroadcastTx(self, request, context):
        if not request.tx:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty tx")
        try:
            result = self.rpc.broadcast_tx_sync(request.tx)
        except NodeUnavailable as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        except RPCError as err:
            text = f"{err.message} {err.data}"
            status = next((s for pattern, s in _MEMPOOL_ERRORS if pattern in text), grpc.StatusCode.FAILED_PRECONDITION)
            context.abort(status, f"node refused the tx: {err.data or err.message}")
        if result.code:
            log.info("tx %s refused (code %d): %s", result.hash[:12], result.code, result.log)
        return gw.BroadcastTxResponse(code=result.code, codespace=result.codespace, log=result.log, hash=result.hash)

    # -- queries -----------------------------------------------------------------------------

    def GetNodeInfo(self, request, context):
        status = self._node(context, self.rpc.status)
        sync = status["sync_info"]
        return gw.NodeInfo(
            chain_id=status["node_info"]["network"],
            moniker=status["node_info"]["moniker"],
            latest_height=int(sync["latest_block_height"]),
            latest_app_hash=bytes.fromhex(sync["latest_app_hash"] or ""),
            catching_up=bool(sync["catching_up"]),
        )

    def GetParams(self, request, context):
        return self._query(context, qp.PARAMS)

    def GetRound(self, request, context):
        return self._query(context, qp.ROUND, request.id or None)  # 0: the current round

    def GetParticipant(self, request, context):
        return self._query(context, qp.PARTICIPANT, self._address(context, request.address))

    def ListParticipants(self, request, context):
        return self._query(context, qp.PARTICIPANTS)

    def GetAccount(self, request, context):
        return self._query(context, qp.ACCOUNT, self._address(context, request.address))

    def GetModel(self, request, context):
        return self._query(context, qp.MODEL)

    def GetCandidate(self, request, context):
        return self._query(context, qp.CANDIDATE)

    def GetUpdates(self, request, context):
        return self._query(context, qp.UPDATES)

    # -- stream ------------------------------------------------------------------------------

    def WatchRounds(self, request, context):
        address = from_bech32(self._address(context, request.address)) if request.address else None
        snapshot = self.feed.latest()
        if snapshot is None:  # the feed has not seen the chain yet: read it now
            self._node(context, self.feed.refresh)
            snapshot = self.feed.latest()
        seen = 0
        while context.is_active():
            if snapshot is not None:
                seen = snapshot.version
                yield self._event(snapshot, address)
            snapshot = self.feed.wait(seen, WATCH_POLL_S)

    @staticmethod
    def _event(snapshot: Snapshot, address: bytes | None) -> gw.RoundEvent:
        event = gw.RoundEvent(height=snapshot.height, round=snapshot.round, role=role_of(snapshot.round, address))
        if snapshot.finished is not None:
            event.finished.CopyFrom(snapshot.finished)
        return event


GATEWAY_SERVICE = gw.DESCRIPTOR.services_by_name["Gateway"].full_name
HEALTH_POLL_S = 1.0


def node_serving(rpc: CometRPC) -> bool:
    """Whether the node can answer for the chain: reachable and not catching up."""
    try:
        return not rpc.status()["sync_info"]["catching_up"]
    except (NodeUnavailable, RPCError, KeyError):
        return False


def _follow_node_health(server: grpc.Server, rpc: CometRPC, servicer: health.HealthServicer) -> None:
    """Poll the node until the server stops, publishing its state for the whole server and the Gateway."""
    while True:
        status = (
            health_pb2.HealthCheckResponse.SERVING if node_serving(rpc) else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", GATEWAY_SERVICE):
            servicer.set(service, status)
        if server.wait_for_termination(timeout=HEALTH_POLL_S):
            return


def serve(
    rpc_url: str, listen: str, max_workers: int = 64, tls: tuple[bytes, bytes] | None = None
) -> tuple[grpc.Server, RoundFeed]:
    """Start the gateway for the node at rpc_url on `listen` (host:port); returns (server, feed).

    tls: (certificate chain, private key) in PEM: serve TLS only (clients verify the certificate)."""
    rpc = CometRPC(rpc_url)
    feed = RoundFeed(rpc).start()
    # Each open WatchRounds stream holds a worker thread, hence a generous pool.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="gateway"), options=GRPC_OPTIONS
    )
    gateway_pb2_grpc.add_GatewayServicer_to_server(GatewayService(rpc, feed), server)
    health_servicer = health.HealthServicer()
    for service in ("", GATEWAY_SERVICE):  # until the first look at the node
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((GATEWAY_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if tls is None:
        port = server.add_insecure_port(listen)
    else:
        chain, key = tls
        port = server.add_secure_port(listen, grpc.ssl_server_credentials([(key, chain)]))
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    server.start()
    threading.Thread(
        target=_follow_node_health, args=(server, rpc, health_servicer), name="gateway-health", daemon=True
    ).start()
    return server, feed
