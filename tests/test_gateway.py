"""The gateway and the participants' client over gRPC, against a real single-node CometBFT.

One node with its app and gateway serves the module; six funded participant keys start unbonded.
"""

import json
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from abci_app.codes import Code
from abci_app.genesis import STANDARD_BOND, default_params
from cli.main import main as flchain
from client import tx as txb
from client.gateway_client import ChainError, GatewayClient, NotFound, TxRejected, Unavailable
from client.keys import Key
from client.metrics import scrape
from client.signer import Signer
from flchain.v1 import gateway_pb2 as gw
from flchain.v1 import types_pb2
from gateway.server import GatewayServer
from localnet import launch
from localnet.genesis import PARTICIPANT_BALANCE, participant_keys
from localnet.net import KEEP
from participant.digits import DigitsLearner
from participant.ml import data, models
from participant.runtime import Participant

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING

pytestmark = pytest.mark.integration
DIGITS_MLP = [(name, values.shape) for name, values in models.initial_params("mlp")]
PARTICIPANTS = 6


def node_params():
    """The chain's defaults, but participants come and go between tests here: a round they leave
    unfinished ends in seconds, not minutes."""
    params = default_params()
    params.propose_timeout_ms, params.vote_timeout_ms = 10_000, 10_000
    return params


@pytest.fixture(scope="module")
def node(tmp_path_factory, cometbft_bin, port_base):
    home = tmp_path_factory.mktemp("gateway-net")
    net = launch.start(
        home,
        1,
        participants=PARTICIPANTS,
        base_port=port_base(1),
        params=node_params(),
        model=models.initial_params("mlp"),
    )
    keys = participant_keys(launch.keys_dir(home), PARTICIPANTS)
    client = GatewayClient(net.ports(0).gateway_address, retry_for=20)
    try:
        yield net, keys, client
    finally:
        client.close()
        net.down()


def next_event(watch_iter, predicate, timeout: float) -> gw.RoundEvent:
    deadline = time.monotonic() + timeout
    for event in watch_iter:
        if predicate(event):
            return event
        assert time.monotonic() < deadline, f"no matching round event within {timeout}s (last: {event})"
    raise AssertionError("round stream ended")


def test_queries_round_trip(node):
    net, keys, client = node
    info = client.node_info()
    assert info.chain_id == net.chain_id == client.chain_id and info.latest_height >= 2
    assert client.params() == node_params()
    account = client.account(keys[0].bech32)
    assert (account.address, account.balance, account.nonce) == (keys[0].address, PARTICIPANT_BALANCE, 0)
    model = client.model()
    assert model.version == 0 and [(t.name, tuple(t.shape)) for t in model.tensors] == DIGITS_MLP
    assert client.round().phase == types_pb2.PHASE_SELECT  # nobody bonded yet
    with pytest.raises(NotFound, match="no participant"):
        client.participant(keys[0].bech32)
    with pytest.raises(NotFound, match="no candidate"):
        client.candidate()
    with pytest.raises(ChainError, match="invalid_argument.*bad address"):
        client.account("cosmos1notours")


def test_refused_txs_say_why_and_change_nothing(node):
    net, keys, client = node
    key = keys[5]
    garbage = client.broadcast(b"\xff\x00not a tx")
    assert (garbage.code, garbage.codespace) == (Code.TX_UNDECODABLE, "flchain")
    other_chain = client.broadcast(txb.sign_tx(key, "another-chain", 0, [txb.bond(STANDARD_BOND)]))
    assert other_chain.code == Code.WRONG_CHAIN_ID and "another-chain" in other_chain.log
    with pytest.raises(TxRejected) as err:
        Signer(client, key).send([txb.bond(10)])
    assert err.value.code == Code.BOND_BELOW_THRESHOLD
    assert str(err.value).startswith("tx rejected (code 20 bond_below_threshold): ") and "\n" not in str(err.value)
    assert client.account(key.bech32).nonce == 0


def test_unreachable_gateway_is_one_clear_line(closed_port):
    client = GatewayClient(f"127.0.0.1:{closed_port}", retry_for=1)
    started = time.monotonic()
    with pytest.raises(Unavailable) as err:
        client.params()
    assert time.monotonic() - started >= 1  # it retried before giving up
    assert f"127.0.0.1:{closed_port}" in str(err.value) and "\n" not in str(err.value)


def test_participants_play_rounds_over_grpc(node):
    net, keys, client = node
    shards, _ = data.partition(PARTICIPANTS, seed=0)
    participants = [
        Participant(k, GatewayClient(net.ports(0).gateway_address), DigitsLearner(shards[i], seed=i))
        for i, k in enumerate(keys)
    ]
    threads = [threading.Thread(target=p.run, daemon=True) for p in participants]
    for t in threads:
        t.start()
    watch = client.watch_rounds()
    try:
        # A round whose proposer was still starting up ends with no update; the next one is played.
        finished = next_event(
            iter(watch),
            lambda e: e.HasField("finished") and e.finished.outcome != types_pb2.OUTCOME_NO_UPDATES,
            timeout=180,
        ).finished
    finally:
        watch.cancel()
        for p in participants:
            p.stop()
        for t in threads:
            t.join(timeout=30)
    assert finished.outcome == types_pb2.OUTCOME_ACCEPTED, finished
    assert set(finished.submitted) == set(finished.proposers)
    assert {b.voter for b in finished.ballots} == set(finished.voters)
    assert [v.proposer for v in finished.verdicts] == list(finished.submitted)
    by_address = {p.key.address: p for p in participants}
    for address in finished.proposers:
        assert (finished.id, "submitted") in by_address[address].actions
    for ballot in finished.ballots:
        assert (finished.id, "voted") in by_address[ballot.voter].actions
        assert 0 < ballot.loss < 100_000 and len(ballot.scores) == len(finished.submitted)  # real held-out losses
    included = [v.proposer for v in finished.verdicts if v.included]
    assert included  # honest updates on IID digits join the FedAvg
    rewarded = {e.reason for a in included for e in client.participant(by_address[a].key.bech32).history}
    assert "update_included" in rewarded or all(v.contribution_bps <= 0 for v in finished.verdicts if v.included)
    assert client.model().version >= 1


def test_a_restarted_participant_never_acts_twice_and_reveals_what_it_committed(node):
    net, keys, client = node
    shards, _ = data.partition(PARTICIPANTS, seed=0)
    time.sleep(2)  # an update an earlier test's participant sent as it stopped lands first
    watch = client.watch_rounds()
    events = iter(watch)
    try:
        event = next_event(events, lambda e: e.round.phase == types_pb2.PHASE_PROPOSE, timeout=120)
        committed = [c.sender for c in client.round(event.round.id).update_commitments]
        key = next(k for k in keys if k.address in event.round.proposers and k.address not in committed)
        nonce = client.account(key.bech32).nonce

        def participant() -> Participant:
            learner = DigitsLearner(shards[keys.index(key)], seed=keys.index(key))
            return Participant(key, GatewayClient(net.ports(0).gateway_address), learner)

        first = participant()
        assert first.handle(event) == "committed update"
        assert first.handle(event) is None  # remembered: nothing trained or sent
        deadline = time.monotonic() + 30
        while key.address not in [c.sender for c in client.round(event.round.id).update_commitments]:
            assert time.monotonic() < deadline, "the commitment never reached a block"
            time.sleep(0.2)
        restarted = participant()  # killed after its commitment: nothing of it is left in memory
        assert restarted.handle(event) is None  # the chain says it committed
        # nobody else plays: PROPOSE ends at its deadline, and the restarted participant trains again
        # (seeded), finds the same commitment and reveals its update
        reveal = next_event(events, lambda e: e.round.phase == types_pb2.PHASE_REVEAL_UPDATES, timeout=60)
        assert reveal.round.id == event.round.id
        assert restarted.handle(reveal) == "submitted"
        assert restarted.handle(reveal) is None
    finally:
        watch.cancel()
    deadline = time.monotonic() + 30
    while key.address not in client.round(event.round.id).submitted:
        assert time.monotonic() < deadline, "the update never reached a block"
        time.sleep(0.2)
    assert participant().handle(reveal) is None  # the chain says it is done
    assert list(client.round(event.round.id).submitted).count(key.address) == 1
    assert client.account(key.bech32).nonce == nonce + 2


def test_watch_rides_out_a_gateway_restart(node):
    net, keys, _ = node
    client = GatewayClient(net.ports(0).gateway_address, retry_for=30)
    address = keys[1].bech32
    events = iter(client.watch_rounds(address))
    first = next(events)
    expected = {
        keys[1].address in first.round.proposers: gw.ROLE_PROPOSER,
        keys[1].address in first.round.voters: gw.ROLE_VOTER,
    }.get(True, gw.ROLE_NONE)
    assert first.role == expected
    net.stop_node(0, "gateway")
    net.start_node(0, KEEP)
    after = next(events)  # the stream reconnects and starts again from the current round
    assert after.round.id >= first.round.id
    assert net.status()[0]["gateway_running"]


def test_a_node_that_is_down_is_unavailable_then_back(node):
    net, keys, _ = node
    client = GatewayClient(net.ports(0).gateway_address, retry_for=2)
    height = client.node_info().latest_height
    net.stop_node(0, "cometbft")
    try:
        with pytest.raises(Unavailable) as err:
            client.params()
        message = str(err.value)
        assert "unreachable" in message and net.ports(0).rpc_url in message and "\n" not in message
    finally:
        net.start_node(0, KEEP)
    net.wait_for_height(height + 2, timeout=60)
    assert client.account(keys[0].bech32).address == keys[0].address


def test_cli_tx_and_query(node, tmp_path, capsys):
    net, keys, client = node
    gateway, rpc = net.ports(0).gateway_address, net.ports(0).rpc_url
    keyring = str(launch.keys_dir(net.home))
    assert flchain(["keys", "list", "--keyring-dir", keyring]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t") for line in listed] == [[k.name, k.bech32] for k in keys]
    assert flchain(["keys", "add", "alice", "--keyring-dir", str(tmp_path), "--keyring-backend", "test"]) == 0
    alice = Key.load(tmp_path / "alice.json")
    assert alice.bech32 in capsys.readouterr().out

    assert (
        flchain(
            [
                "tx",
                "vote",
                "1",
                "--loss",
                "10000",
                "--start-loss",
                "11000",
                "--scores",
                "100",
                "--from",
                keys[4].name,
                "--keyring-dir",
                keyring,
                "--gateway",
                gateway,
            ]
        )
        == 2
    )
    assert "tx rejected (code 3" in capsys.readouterr().err  # 30 wrong_phase, 34 not_voter or 36 bad_ballot
    assert flchain(["tx", "bond", "10", "--from", "alice", "--keyring-dir", str(tmp_path), "--gateway", gateway]) == 2
    assert f"{alice.bech32} has no account on chain {net.chain_id}" in capsys.readouterr().err

    assert flchain(["query", "account", keys[4].bech32, "--node", rpc, "--output", "json"]) == 0
    account = json.loads(capsys.readouterr().out)
    assert account["address"] == keys[4].bech32 and int(account["balance"]) <= PARTICIPANT_BALANCE
    assert flchain(["query", "model", "--node", rpc]) == 0
    text = capsys.readouterr().out
    assert "version:" in text and "fc1.weight [32, 64]" in text
    assert flchain(["query", "participant", "flc1bogus", "--node", rpc]) == 1
    assert "code 52" in capsys.readouterr().err


def test_cli_submit_update_reaches_the_chain_checks(node, tmp_path, capsys):
    net, keys, client = node
    update = tmp_path / "update.npz"
    np.savez(update, **{name: np.zeros(shape, np.float32) for name, shape in DIGITS_MLP[:2]})
    assert (
        flchain(
            [
                "tx",
                "submit-update",
                "1",
                str(update),
                "--num-samples",
                "10",
                "--from",
                keys[3].name,
                "--keyring-dir",
                str(launch.keys_dir(net.home)),
                "--gateway",
                net.ports(0).gateway_address,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: tx rejected (code 3") and err.count("\n") == 1


def test_health_and_reflection_serve_generic_clients(node):
    net, _, _ = node
    with grpc.insecure_channel(net.ports(0).gateway_address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        for service in ("", "flchain.v1.Gateway"):
            # the gateway looks at its node once a second (an earlier test restarted it): allow a few looks
            deadline = time.monotonic() + 10
            while check(health_pb2.HealthCheckRequest(service=service), timeout=10).status != SERVING:
                assert time.monotonic() < deadline, f"{service or 'the server'} never SERVING"
                time.sleep(0.2)
        # a client without flchain's .proto files (grpcurl, or this one) learns the API from the server
        database = ProtoReflectionDescriptorDatabase(channel)
        assert {"flchain.v1.Gateway", "grpc.health.v1.Health"} <= set(database.get_services())
        method = DescriptorPool(database).FindServiceByName("flchain.v1.Gateway").FindMethodByName("WatchRounds")
        assert method.input_type.full_name == "flchain.v1.WatchRoundsRequest" and method.server_streaming


def test_health_says_not_serving_while_the_node_is_unreachable(closed_port, listen_address):
    server = GatewayServer(f"http://127.0.0.1:{closed_port}", listen_address).start()
    try:
        with grpc.insecure_channel(listen_address) as channel:
            request = health_pb2.HealthCheckRequest(service="flchain.v1.Gateway")
            assert health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status == NOT_SERVING
    finally:
        server.stop(grace=None)


def test_tx_wait_and_query_tx_report_the_block_result(node, capsys):
    net, keys, _ = node
    gateway, rpc = net.ports(0).gateway_address, net.ports(0).rpc_url
    keyring = str(launch.keys_dir(net.home))
    send = [
        "tx",
        "bond",
        str(STANDARD_BOND),
        "--from",
        keys[5].name,
        "--keyring-dir",
        keyring,
        "--gateway",
        gateway,
        "--node",
        rpc,
    ]
    assert flchain([*send, "--wait", "-o", "json"]) == 0
    included = json.loads(capsys.readouterr().out)
    assert (included["code"], included["code_name"]) == (0, "ok") and included["height"] > 0
    assert flchain(["query", "tx", included["hash"], "--node", rpc]) == 0
    assert capsys.readouterr().out.strip() == (
        f"tx {included['hash']} committed at height {included['height']}: code 0 (ok)"
    )
    assert flchain(["query", "tx", "AB" * 32, "--node", rpc]) == 1
    assert "is in no block" in capsys.readouterr().out


def test_a_tx_refused_in_its_block_is_said_to_be():
    from cli.query import describe_included, included_tx_fields
    from client.rpc import IncludedTx

    refused = IncludedTx(hash="AB" * 32, height=12, code=30, codespace="flchain", log="round 3 is in PHASE_VOTE")
    assert describe_included(refused) == (
        f"tx {'AB' * 32} refused in its block at height 12: code 30 wrong_phase: round 3 is in PHASE_VOTE"
    )
    assert included_tx_fields(refused)["code_name"] == "wrong_phase"


def test_the_app_and_cometbft_export_metrics_and_status_shows_them(node, capsys):
    net, keys, client = node
    keyring = str(launch.keys_dir(net.home))
    # a vote out of turn: refused in CheckTx, counted by code
    vote = [
        "tx",
        "vote",
        "1",
        "--loss",
        "1",
        "--start-loss",
        "1",
        "--scores",
        "1",
        "--from",
        keys[-1].name,
        "--keyring-dir",
        keyring,
    ]
    assert flchain([*vote, "--gateway", net.ports(0).gateway_address]) == 2
    ports = net.ports(0)
    app = scrape(ports.app_metrics_url)
    assert app["flchain_height"] >= 1 and app["flchain_round"] >= 1 and app["flchain_round_phase"] in range(1, 7)
    bonded = [p for p in client.participants() if p.status == types_pb2.PARTICIPANT_STATUS_BONDED]
    assert app["flchain_participants_bonded"] == len(bonded)
    assert app["flchain_total_stake"] == sum(p.stake for p in bonded)
    assert app["flchain_finalize_block_seconds_count"] >= app["flchain_height"] - 1
    refused = urllib.request.urlopen(ports.app_metrics_url).read().decode()
    assert 'flchain_txs_refused_total{code="' in refused and 'stage="check_tx"' in refused
    cometbft = urllib.request.urlopen(ports.cometbft_metrics_url).read().decode()
    heights = [line for line in cometbft.splitlines() if line.startswith("cometbft_consensus_height{")]
    assert heights and float(heights[0].split()[-1]) >= 1
    capsys.readouterr()
    assert flchain(["localnet", "--home", str(net.home), "status"]) == 0
    printed = capsys.readouterr().out
    row = printed.splitlines()[1].split()
    phases = ("select", "propose", "reveal-u", "vote", "reveal-b", "tally")
    assert row[5] != "-" and row[6] in phases, printed  # round, phase: from the app


def test_tx_refuses_to_sign_for_another_chain_and_reads_defaults_from_the_environment(node, monkeypatch):
    net, keys, _ = node
    monkeypatch.setenv("FLCHAIN_GATEWAY", net.ports(0).gateway_address)
    monkeypatch.setenv("FLCHAIN_KEYRING_DIR", str(launch.keys_dir(net.home)))
    nonce = GatewayClient(net.ports(0).gateway_address).account(keys[2].bech32).nonce
    with pytest.raises(SystemExit, match=f"serves chain '{net.chain_id}', not 'other-chain'"):
        flchain(["tx", "bond", "10", "--from", keys[2].name, "--chain-id", "other-chain"])
    assert GatewayClient(net.ports(0).gateway_address).account(keys[2].bech32).nonce == nonce  # nothing was sent


def self_signed_certificate() -> tuple[bytes, bytes]:
    """(certificate, private key) in PEM for 127.0.0.1, valid for a day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flchain test gateway")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pem_key


def test_a_tls_gateway_answers_clients_that_verify_it_and_no_others(closed_port, listen_address):
    certificate, key = self_signed_certificate()
    server = GatewayServer(f"http://127.0.0.1:{closed_port}", listen_address, tls=(certificate, key)).start()
    request = health_pb2.HealthCheckRequest(service="flchain.v1.Gateway")
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=certificate)
        with grpc.secure_channel(listen_address, credentials) as channel:
            assert health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status == NOT_SERVING
        with grpc.insecure_channel(listen_address) as channel, pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # the SDK's client over TLS reaches the gateway, which says its node is down
        with (
            GatewayClient(listen_address, retry_for=0, tls_ca=certificate) as client,
            pytest.raises(Unavailable, match="CometBFT RPC at .* is unreachable"),
        ):
            client.node_info()
    finally:
        server.stop(grace=None)
