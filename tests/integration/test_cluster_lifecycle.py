"""The local cluster's own lifecycle on a small throwaway cluster of its own (one real node):
`cluster-up` makes real nodes that report the pinned versions, repairs a half-started cluster,
and `cluster-down` leaves no process, mount, iptables rule, interface, namespace or cgroup.

Runs beside the test cluster of `make test` (its own name, so its own addresses, ports and folders).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from harness import REPO, cluster_layout, tool, wait_for

pytestmark = pytest.mark.integration

CLUSTER = "mlplatform-lifecycle"
CLUSTER_SH = str(REPO / "scripts" / "cluster.sh")


@pytest.fixture(scope="module")
def lifecycle_env(tool_env):
    env = dict(
        tool_env,
        MLP_CLUSTER=CLUSTER,
        MLP_REAL_NODES="1",
        MLP_SIM_CPU_NODES="0",
        KUBECONFIG=str(Path.home() / ".kwok" / "clusters" / CLUSTER / "kubeconfig.yaml"),
    )
    yield env
    subprocess.run(["bash", CLUSTER_SH, "down"], env=env, capture_output=True, timeout=300)


def _cluster(env, *args: str) -> str:
    proc = subprocess.run(
        ["bash", CLUSTER_SH, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, (
        f"cluster.sh {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def _nodes(env) -> list[dict]:
    out = subprocess.run(
        [tool("kubectl"), "get", "nodes", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)["items"]


def _ready(node: dict) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])
    )


def _pids(layout) -> dict[str, int]:
    folder = Path(layout["CLUSTER_RUN"]) / "pids"
    return {p.stem: int(p.read_text()) for p in folder.glob("*.pid")} if folder.is_dir() else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _leftovers(layout) -> dict[str, list[str]]:
    """Everything of this cluster still on the host, by kind."""
    ip = lambda *a: subprocess.run(["ip", *a], capture_output=True, text=True).stdout  # noqa: E731
    mounts = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1].startswith(
            (layout["CLUSTER_STATE"], layout["CLUSTER_RUN"], f"/run/netns/{CLUSTER}-")
        )
    ]
    rules = [
        r
        for table in ("filter", "nat")
        for r in subprocess.run(
            ["iptables", "-t", table, "-S"], capture_output=True, text=True
        ).stdout.splitlines()
        if f"mlplatform:{CLUSTER}" in r
    ]
    cgroups = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/mlplatform/{CLUSTER}")]
    procs = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if layout["CLUSTER_STATE"] in cmdline or layout["CLUSTER_RUN"] in cmdline:
                procs.append(f"{proc.name}: {cmdline[:120]}")
    return {
        "processes": procs,
        "mounts": mounts,
        "iptables rules": rules,
        "interfaces": [
            line
            for line in ip("-o", "link").splitlines()
            if f" {layout['BRIDGE']}" in line or f"mlp{layout['MLP_SLOT']}n" in line
        ],
        "network namespaces": [
            n for n in ip("netns", "list").split() if n.startswith(f"{CLUSTER}-")
        ],
        "cgroups": cgroups,
        "folders": [
            d for d in (layout["CLUSTER_STATE"], layout["CLUSTER_RUN"]) if Path(d).exists()
        ],
    }


def test_up_makes_real_nodes_that_repair_and_down_leaves_nothing(lifecycle_env):
    layout = cluster_layout(lifecycle_env)
    _cluster(lifecycle_env, "up")
    real = [
        n
        for n in _nodes(lifecycle_env)
        if n["metadata"]["labels"].get("node.mlplatform.io/kind") == "real"
    ]
    assert len(real) == 1 and _ready(real[0]), real
    info = real[0]["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.33.4", info
    assert info["containerRuntimeVersion"].startswith("containerd://1.6"), info
    assert real[0]["metadata"]["labels"]["mlplatform.io/pool"] == "cpu"
    status = _cluster(lifecycle_env, "status")
    assert "real" in status and f"{CLUSTER}-node-1" in status, status

    # Half-started: the kubelet died. `up` again starts what is missing and leaves the rest.
    pids = _pids(layout)
    assert {"containerd-1", "kubelet-1", "kube-proxy-1", "registry", "coredns"} <= set(pids), pids
    os.kill(pids["kubelet-1"], signal.SIGKILL)
    wait_for("the killed kubelet to exit", lambda: not _alive(pids["kubelet-1"]), timeout=30)
    _cluster(lifecycle_env, "up")
    after = _pids(layout)
    assert after["kubelet-1"] != pids["kubelet-1"] and _alive(after["kubelet-1"])
    assert after["containerd-1"] == pids["containerd-1"], "a healthy containerd was restarted"
    wait_for(
        "the node Ready again",
        lambda: all(
            _ready(n) for n in _nodes(lifecycle_env) if n["metadata"]["name"] == f"{CLUSTER}-node-1"
        ),
        timeout=120,
    )

    started = _pids(layout)
    _cluster(lifecycle_env, "down")
    assert not [name for name, pid in started.items() if _alive(pid)], (
        "processes outlived cluster-down"
    )
    left = {kind: items for kind, items in _leftovers(layout).items() if items}
    assert not left, f"cluster-down left behind: {left}"
