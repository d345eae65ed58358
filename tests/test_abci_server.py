"""The ABCI socket server: framing, ordering, errors, and one run against the real CometBFT binary."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from abci_app.server import ABCIServer, BaseApplication, FramingError, decode_varint, encode_varint, frame, read_frame
from tendermint.abci import types_pb2 as abci

REPO = Path(__file__).resolve().parents[1]
COMETBFT = Path(os.environ.get("COMETBFT", REPO / ".bin" / "cometbft"))


# ---------------------------------------------------------------------------------------------
# Varint helpers.


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_383, 16_384, 2**21, 2**31 - 1, 2**63 - 1])
def test_varint_round_trip(value):
    encoded = encode_varint(value)
    assert decode_varint(encoded) == (value, len(encoded))
    assert decode_varint(b"\x07" + encoded + b"tail", 1) == (value, 1 + len(encoded))
    assert decode_varint(encoded[:-1]) is None  # incomplete


def test_varint_matches_protobuf_and_is_not_zigzag():
    assert encode_varint(1) == b"\x01"  # zigzag (v0.34) would write 0x02
    assert encode_varint(300) == b"\xac\x02"
    with pytest.raises(ValueError):
        encode_varint(-1)
    with pytest.raises(FramingError):
        decode_varint(b"\xff" * 11)


def test_read_frame_multi_byte_length():
    async def go():
        body = bytes(range(256)) * 1000  # 256000 bytes: a 3-byte length prefix
        reader = asyncio.StreamReader()
        reader.feed_data(frame(body) + frame(b"") + frame(b"x"))
        reader.feed_eof()
        assert len(encode_varint(len(body))) == 3
        assert await read_frame(reader) == body
        assert await read_frame(reader) == b""
        assert await read_frame(reader) == b"x"
        assert await read_frame(reader) is None

    asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# Real sockets against the server on loopback.


class RecordingApp(BaseApplication):
    """Records call order; raises on a query for path '/boom'."""

    def __init__(self):
        self.calls = []

    def check_tx(self, req):
        self.calls.append(req.tx)
        return abci.ResponseCheckTx(code=0 if req.tx.startswith(b"ok") else 7, data=req.tx)

    def query(self, req):
        if req.path == "/boom":
            raise RuntimeError("kaboom")
        return abci.ResponseQuery(value=req.data[::-1])


class Client:
    """A minimal ABCI socket client: writes Requests, reads Responses."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port):
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, **kw):
        self.writer.write(frame(abci.Request(**kw).SerializeToString()))

    async def recv(self) -> abci.Response:
        body = await asyncio.wait_for(read_frame(self.reader), 5)
        assert body is not None, "server closed the connection"
        return abci.Response.FromString(body)

    async def close(self):
        self.writer.close()
        await self.writer.wait_closed()


def with_server(app, test):
    """Run `test(port)` against a fresh server on a free loopback port."""

    async def go():
        server = ABCIServer(app)
        listener = await server.start("tcp://127.0.0.1:0")
        try:
            await asyncio.wait_for(test(listener.sockets[0].getsockname()[1]), 20)
        finally:
            server.close()

    asyncio.run(go())


def test_echo_and_flush():
    async def test(port):
        c = await Client.connect(port)
        c.send(echo=abci.RequestEcho(message="hello"))
        c.send(flush=abci.RequestFlush())
        await c.writer.drain()
        assert (await c.recv()).echo.message == "hello"
        assert (await c.recv()).WhichOneof("value") == "flush"
        await c.close()

    with_server(BaseApplication(), test)


def test_message_split_across_many_small_writes():
    tx = b"ok" + os.urandom(70_000)  # multi-byte length, spans many reads

    async def test(port):
        c = await Client.connect(port)
        data = frame(abci.Request(check_tx=abci.RequestCheckTx(tx=tx)).SerializeToString())
        data += frame(abci.Request(flush=abci.RequestFlush()).SerializeToString())
        for i in range(0, len(data), 997):
            c.writer.write(data[i : i + 997])
            await c.writer.drain()
            if i < 5000:
                await asyncio.sleep(0.001)  # force separate reads on the server side
        resp = await c.recv()
        assert resp.check_tx.code == 0 and resp.check_tx.data == tx
        assert (await c.recv()).HasField("flush")
        await c.close()

    with_server(RecordingApp(), test)


def test_pipelined_requests_answered_in_order():
    app = RecordingApp()
    txs = [b"ok%d" % i if i % 3 else b"bad%d" % i for i in range(200)]

    async def test(port):
        c = await Client.connect(port)
        for tx in txs:
            c.send(check_tx=abci.RequestCheckTx(tx=tx, type=abci.CheckTxType.NEW))
        c.send(info=abci.RequestInfo())
        c.send(flush=abci.RequestFlush())
        await c.writer.drain()
        for tx in txs:
            resp = await c.recv()
            assert resp.check_tx.data == tx
            assert resp.check_tx.code == (0 if tx.startswith(b"ok") else 7)
        assert (await c.recv()).HasField("info")
        assert (await c.recv()).HasField("flush")
        await c.close()

    with_server(app, test)
    assert app.calls == txs


def test_default_prepare_proposal_respects_max_tx_bytes():
    async def test(port):
        c = await Client.connect(port)
        c.send(prepare_proposal=abci.RequestPrepareProposal(txs=[b"a" * 10, b"b" * 10, b"c"], max_tx_bytes=20))
        c.send(process_proposal=abci.RequestProcessProposal())
        c.send(flush=abci.RequestFlush())
        assert list((await c.recv()).prepare_proposal.txs) == [b"a" * 10, b"b" * 10]
        assert (await c.recv()).process_proposal.status == abci.ResponseProcessProposal.ACCEPT
        assert (await c.recv()).HasField("flush")
        await c.close()

    with_server(BaseApplication(), test)


def test_app_exception_becomes_response_exception(caplog):
    async def test(port):
        c = await Client.connect(port)
        c.send(query=abci.RequestQuery(path="/boom"))
        c.send(flush=abci.RequestFlush())
        resp = await c.recv()
        assert resp.WhichOneof("value") == "exception"
        assert "kaboom" in resp.exception.error
        assert (await c.recv()).HasField("flush")
        await c.close()

    with_server(RecordingApp(), test)
    assert "RuntimeError: kaboom" in caplog.text and "Traceback" in caplog.text


def test_wrong_return_type_becomes_response_exception():
    class Sloppy(BaseApplication):
        def info(self, req):
            return None

    async def test(port):
        c = await Client.connect(port)
        c.send(info=abci.RequestInfo())
        c.send(flush=abci.RequestFlush())
        assert "expected ResponseInfo" in (await c.recv()).exception.error
        await c.close()

    with_server(Sloppy(), test)


@pytest.mark.parametrize("garbage", [b"\xff" * 16, b"\x05\xff\xff\xff\xff\xff"])
def test_malformed_frame_closes_only_that_connection(garbage):
    async def test(port):
        good = await Client.connect(port)
        bad = await Client.connect(port)
        bad.writer.write(garbage)
        await bad.writer.drain()
        assert await asyncio.wait_for(bad.reader.read(), 5) == b""  # server hung up on it
        await bad.close()
        for c in (good, await Client.connect(port)):  # old and new connections still served
            c.send(query=abci.RequestQuery(data=b"abc"))
            c.send(flush=abci.RequestFlush())
            assert (await c.recv()).query.value == b"cba"
            assert (await c.recv()).HasField("flush")
            await c.close()

    with_server(RecordingApp(), test)


def test_unix_socket(tmp_path):
    path = tmp_path / "abci.sock"

    async def go():
        server = ABCIServer(BaseApplication())
        await server.start(f"unix://{path}")
        try:
            c = Client(*await asyncio.open_unix_connection(str(path)))
            c.send(echo=abci.RequestEcho(message="u"))
            c.send(flush=abci.RequestFlush())
            assert (await c.recv()).echo.message == "u"
            await c.close()
        finally:
            server.close()
        # A socket file left behind by a previous run is replaced, not an error.
        server = ABCIServer(BaseApplication())
        await server.start(f"unix://{path}")
        server.close()

    asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# Integration: the real cometbft binary against a tiny counter app.


class CounterApp(BaseApplication):
    """Txs are 8-byte big-endian integers that must equal the counter plus one."""

    def __init__(self):
        self.counter = 0  # committed
        self.pending = 0  # after FinalizeBlock, before Commit
        self.mempool_next = 1  # next value CheckTx accepts
        self.height = 0
        self.app_hash = b""
        self.finalized = []

    @staticmethod
    def _value(tx):
        return struct.unpack(">Q", tx)[0] if len(tx) == 8 else None

    def info(self, req):
        return abci.ResponseInfo(data="counter", last_block_height=self.height, last_block_app_hash=self.app_hash)

    def check_tx(self, req):
        value = self._value(req.tx)
        if req.type == abci.CheckTxType.RECHECK:  # still valid after the last commit?
            ok = value is not None and value > self.counter
        else:
            ok = value == self.mempool_next
            if ok:
                self.mempool_next += 1
        return abci.ResponseCheckTx(code=0 if ok else 1, log="" if ok else "bad nonce")

    def finalize_block(self, req):
        results = []
        self.pending = self.counter
        for tx in req.txs:
            if self._value(tx) == self.pending + 1:
                self.pending += 1
                results.append(abci.ExecTxResult(code=0))
            else:
                results.append(abci.ExecTxResult(code=1, log="bad nonce"))
        self.finalized.append(req.height)
        return abci.ResponseFinalizeBlock(tx_results=results, app_hash=struct.pack(">Q", self.pending))

    def commit(self, req):
        self.counter = self.pending
        self.height = self.finalized[-1]
        self.app_hash = struct.pack(">Q", self.counter)
        self.mempool_next = max(self.mempool_next, self.counter + 1)
        return abci.ResponseCommit()

    def query(self, req):
        return abci.ResponseQuery(value=struct.pack(">Q", self.counter), height=self.height)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _set_toml(text, section, key, value):
    """Replace `key = ...` inside `[section]` ('' for the top level) of a config.toml."""
    out, current, done = [], "", False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
        elif current == section and stripped.startswith(key + " ") and not done:
            line, done = f"{key} = {value}", True
        out.append(line)
    assert done, f"{section}.{key} not found"
    return "\n".join(out) + "\n"


class ServerThread:
    """The ABCI server on its own event loop in a background thread."""

    def __init__(self, app, address):
        self.loop = asyncio.new_event_loop()
        self.server = ABCIServer(app)
        self.loop.run_until_complete(self.server.start(address))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _rpc(port, method, **params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = json.load(r)
    assert "error" not in answer, answer
    return answer["result"]


def _status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        return json.load(r)["result"]


class Node:
    """A single-validator cometbft home wired to a CounterApp served from this process."""

    def __init__(self, tmp_path):
        self.home, self.log_path = tmp_path / "node", tmp_path / "cometbft.log"
        subprocess.run([str(COMETBFT), "init", "--home", str(self.home)], check=True, capture_output=True)
        abci_port, self.rpc, p2p_port = _free_port(), _free_port(), _free_port()
        cfg = self.home / "config" / "config.toml"
        text = cfg.read_text()
        for section, key, value in [
            ("", "proxy_app", f'"tcp://127.0.0.1:{abci_port}"'),
            ("rpc", "laddr", f'"tcp://127.0.0.1:{self.rpc}"'),
            ("p2p", "laddr", f'"tcp://127.0.0.1:{p2p_port}"'),
            ("consensus", "timeout_commit", '"200ms"'),
            ("consensus", "timeout_propose", '"1s"'),
            ("consensus", "create_empty_blocks", "true"),
        ]:
            text = _set_toml(text, section, key, value)
        cfg.write_text(text)
        self.app = CounterApp()
        self.server = ServerThread(self.app, f"tcp://127.0.0.1:{abci_port}")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                [str(COMETBFT), "start", "--home", str(self.home)], stdout=log_file, stderr=subprocess.STDOUT
            )

    def stop(self):
        """SIGTERM and wait; kill only if it will not stop. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_tail(self):
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""

    def wait_for(self, cond, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"cometbft exited:\n{self.log_tail()}"
            try:
                if cond():
                    return
            except OSError:
                pass  # RPC not up yet
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}:\n{self.log_tail()}")

    def height(self):
        return int(_status(self.rpc)["sync_info"]["latest_block_height"])

    def broadcast(self, value):
        return _rpc(self.rpc, "broadcast_tx_sync", tx=base64.b64encode(struct.pack(">Q", value)).decode())

    def counter(self):
        result = _rpc(self.rpc, "abci_query", path="", data="")["response"]
        return struct.unpack(">Q", base64.b64decode(result["value"]))[0]


@pytest.fixture
def counter_node(tmp_path):
    """A Node whose cometbft process and server thread are always cleaned up."""
    assert COMETBFT.exists(), f"no cometbft binary at {COMETBFT}: run scripts/setup.sh"
    node = Node(tmp_path)
    try:
        yield node
    finally:
        node.stop()
        node.server.stop()


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_counter_app_on_real_cometbft(counter_node):
    node, app = counter_node, counter_node.app
    node.start()
    node.wait_for(lambda: node.height() >= 3, "height 3")

    assert node.broadcast(1)["code"] == 0
    assert node.broadcast(2)["code"] == 0
    bad = node.broadcast(7)
    assert bad["code"] == 1 and bad["log"] == "bad nonce"
    node.wait_for(lambda: node.counter() == 2, "counter 2")

    # The app hash CometBFT recorded is the app's: the 8-byte counter, hex in the next header.
    height = app.height + 1
    node.wait_for(lambda: node.height() >= height, "one more block")
    header = _rpc(node.rpc, "block", height=str(height))["block"]["header"]
    assert bytes.fromhex(header["app_hash"]) == struct.pack(">Q", 2)

    # SIGTERM: cometbft shuts down cleanly; the server outlives its four connections and
    # serves a restarted cometbft, whose handshake (Info) resumes from the app's height.
    assert node.stop() == 0, node.log_tail()
    stopped_at = app.height
    node.start()
    node.wait_for(lambda: node.height() > stopped_at + 1, "blocks after restart")
    assert node.broadcast(3)["code"] == 0
    node.wait_for(lambda: node.counter() == 3, "counter 3")
    assert node.stop() == 0, node.log_tail()
    log = node.log_path.read_text()
    assert "ResponseException" not in log and "panic" not in log
