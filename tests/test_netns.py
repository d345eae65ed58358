"""Four validators on four "hosts": Linux network namespaces, each with its own address on a bridge,
so nothing between the nodes goes over 127.0.0.1. tests/netns_lab.py builds the network with the
per-node commands an operator runs (init, genesis, start), runs a federation of Flower clients
through the nodes' gateways, kills one node hard and restarts it; this test checks what it saw.

Skips, saying why, where namespaces, bridges or veth pairs cannot be made (no user namespaces and
not root, or no iproute2)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = "ip link add br0 type bridge && ip link add v0 type veth peer name v1 && unshare --net true"
NAMESPACE_COMMANDS = (
    ["unshare", "--user", "--map-root-user", "--net", "--fork"],  # any user, where user namespaces are allowed
    ["unshare", "--net", "--fork"],  # root without user namespaces
)


def namespace_prefix() -> list[str]:
    """A command prefix that runs its command as root of a fresh network namespace, or skip."""
    missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"network namespaces need {', '.join(missing)} (util-linux, iproute2)")
    reasons = []
    for prefix in NAMESPACE_COMMANDS:
        if prefix[1] != "--user" and os.geteuid() != 0:
            continue
        probe = subprocess.run([*prefix, "sh", "-c", PROBE], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return prefix
        reasons.append(f"`{' '.join(prefix)}`: {probe.stderr.strip()[-200:]}")
    pytest.skip("cannot make network namespaces with a bridge here: " + "; ".join(reasons or ["not root"]))


@pytest.mark.integration
def test_four_validators_on_four_hosts_agree_after_one_is_killed_and_restarted(tmp_path):
    prefix = namespace_prefix()
    lab = subprocess.run(
        [*prefix, sys.executable, str(ROOT / "tests" / "netns_lab.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=500,
        cwd=ROOT,
    )
    assert lab.returncode == 0, lab.stderr[-4000:]
    seen = json.loads(lab.stdout.strip().splitlines()[-1])

    ips = seen["ips"]
    assert len(set(ips)) == 4 and not any(ip.startswith("127.") for ip in ips)
    assert set(seen["peer_ips"]) == set(ips)  # peers met on their own addresses, not loopback
    for ip, listens in zip(ips, seen["listen"]):
        assert listens and all(address.startswith(f"tcp://{ip}:") for address in listens)
    assert seen["killed_processes"] >= 3  # supervisor, app, cometbft, gateway of node 3
    assert seen["rounds_while_down"] >= 1  # three of four validators keep the chain going
    assert seen["rounds_tallied"] >= 3
    assert len(set(seen["app_hashes"])) == 1, seen["app_hashes"]  # the restarted node agrees
    assert len(set(seen["models"])) == 1 and seen["models"][0] >= 1
    assert seen["exit_codes"] == [0, 0, 0, 0]  # every node stopped cleanly on SIGTERM
