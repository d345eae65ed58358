"""Many watchers on one gateway (figures, not pass/fail): W concurrent WatchRounds streams on one
node's gateway, and how promptly unary calls are answered meanwhile.

A 1-validator localnet runs rounds with nobody acting (short deadlines, no liveness slash), so the
round changes phase every couple of seconds and every change is fanned out to every stream. The
benchmark opens W streams from an asyncio client (spread over several channels, as many clients
would be), then measures: time until every stream has its first event, each phase change's
fan-out (delay from the first stream to the last one receiving it, and how many received it),
unary GetParams / GetRound latency with 0 and with W streams open, and the gateway process's
memory and threads.

Run: python benchmarks/bench_gateway_watchers.py [--watchers 500] [--seconds 20]
"""

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import grpc

from abci_app import genesis
from client.gateway_client import GatewayClient
from flchain.v1 import gateway_pb2 as gw
from flchain.v1 import gateway_pb2_grpc
from localnet import launch
from participant.ml import models

CHANNELS = 10


def process_figures(pid: int) -> tuple[float, int]:
    """(resident MiB, threads) of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def unary_latencies_ms(address: str, calls: int, spacing_s: float = 0.0) -> list[float]:
    """GetParams and GetRound alternately, `spacing_s` apart (so they also meet the fan-outs)."""
    client = GatewayClient(address, retry_for=0)
    times = []
    for i in range(calls):
        start = time.perf_counter()
        client.params() if i % 2 else client.round()
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(spacing_s)
    client.close()
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered):6.1f} ms   p99 {p99:6.1f} ms   max {ordered[-1]:6.1f} ms"


async def watch_all(address: str, watchers: int, seconds: float, opened: threading.Event, arrivals: dict):
    """Open `watchers` streams; record when each receives each (round, phase); run `seconds` after all opened."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(CHANNELS)]
    first_event = asyncio.Event()
    got_first = 0

    async def watch(i: int) -> None:
        nonlocal got_first
        stub = gateway_pb2_grpc.GatewayStub(channels[i % CHANNELS])
        first = True
        async for event in stub.WatchRounds(gw.WatchRoundsRequest()):
            arrivals[(event.round.id, event.round.phase)].append(time.perf_counter())
            if first:
                first = False
                got_first += 1
                if got_first == watchers:
                    first_event.set()

    start = time.perf_counter()
    tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
    await asyncio.wait_for(first_event.wait(), timeout=120)
    all_open_s = time.perf_counter() - start
    opened.set()
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    return all_open_s, start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watchers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20, help="how long the streams stay open")
    parser.add_argument("--calls", type=int, default=200, help="unary calls per measurement")
    parser.add_argument("--base-port", type=int, default=28600)
    args = parser.parse_args()

    params = genesis.default_params()
    params.propose_timeout_ms, params.vote_timeout_ms, params.liveness_slash_bps = 1500, 1500, 0
    with tempfile.TemporaryDirectory() as home:
        net = launch.start(
            Path(home), 1, participants=6, bonded_at_genesis=6, base_port=args.base_port, fresh=True,
            params=params, model=models.initial_params("mlp"),
        )  # fmt: skip
        try:
            address = net.ports(0).gateway_address
            gateway_pid = net.status()[0]["pids"]["gateway"]
            idle_mem = process_figures(gateway_pid)
            idle = unary_latencies_ms(address, args.calls)

            arrivals: dict = defaultdict(list)
            opened = threading.Event()
            busy: list[float] = []
            peak: list[tuple[float, int]] = []

            def measure() -> None:  # once every stream is open
                opened.wait()
                busy.extend(unary_latencies_ms(address, args.calls, 0.8 * args.seconds / args.calls))

            def sample() -> None:  # half way through the open period
                opened.wait()
                time.sleep(args.seconds / 2)
                peak.append(process_figures(gateway_pid))

            helpers = [threading.Thread(target=f, daemon=True) for f in (measure, sample)]
            for helper in helpers:
                helper.start()
            all_open_s, started = asyncio.run(watch_all(address, args.watchers, args.seconds, opened, arrivals))
            for helper in helpers:
                helper.join()
        finally:
            net.down()

    # phase changes that happened after every stream was open: each should reach all of them
    changes = sorted((times for times in arrivals.values() if min(times) > started + all_open_s), key=min)
    fanned = [(len(t), (max(t) - min(t)) * 1000) for t in changes]
    print(f"gateway with {args.watchers} concurrent WatchRounds streams ({CHANNELS} client channels), 1 validator")
    print(f"  every stream had its first event after {all_open_s:.2f} s")
    print(f"  unary calls, no streams:       {summary(idle)}")
    print(f"  unary calls, {args.watchers} streams open: {summary(busy)}")
    if fanned:
        spreads, reached = [s for _, s in fanned], [n for n, _ in fanned]
        print(
            f"  {len(fanned)} phase changes while open: reached {min(reached)}-{max(reached)} "
            f"streams each; first-to-last spread median {statistics.median(spreads):.0f} ms, max {max(spreads):.0f} ms"
        )
    print(f"  gateway memory {idle_mem[0]:.0f} MiB / {idle_mem[1]} threads idle, "
          f"{peak[0][0]:.0f} MiB / {peak[0][1]} threads with the streams open")  # fmt: skip


if __name__ == "__main__":
    main()
