"""Requests through the platform's gateway against the same requests straight to a model pod and
through the model's Service (issue 10): req/s, p50 and p99 per path in one run; how evenly the
gateway spreads the load over the stable replicas; how close the canary's share comes to its
weight. On a cluster of its own (`mlplatform-gwbench`, three real nodes), made at the start and
deleted at the end.

The stack: the dev stack as tests/integration/test_gateway_traffic.py deploys it, from a throwaway
copy of the project on a throwaway file backend: ml-model-1 at 3 stable replicas and a 2-replica
v2 canary at weight 20, no batch job, images in the bench cluster's registry.

Paths. The first four are loaded from inside the first gateway (Traefik) pod's own network
namespace, which the model pods' NetworkPolicy admits, so they all start at the same place:
  gateway          the other Traefik pod's IP:8000, /models/ml-model-1/v2/models/ml-model-1/infer
  gateway-service  the gateway Service's ClusterIP:80 (kube-proxy picks a Traefik pod), same path
  pod              one stable model pod's IP:8080, /v2/models/ml-model-1/infer
  service          the model Service's ClusterIP:8080 (kube-proxy picks one of the 3 stable pods)
  host             from the host: 127.0.0.1:GATEWAY_PORT, the address users and `make demo` call;
                   cluster-up's socat forward to the gateway NodePort on node 1, then kube-proxy,
                   then a Traefik pod: one more hop (the loopback forwarder) than `gateway-service`.

Load: wrk pinned to one CPU (taskset), alike for every path; the body is an Open Inference
Protocol request with the model's recorded sample row (benchmarks/peers/post.lua). Two levels:
8 connections over 2 threads (under load), and 1 connection (the cost of each hop without
queueing). Within a level the paths alternate over --rounds rounds, each a warm-up and a measured
run; medians are reported. Each model pod's own /metrics (through a `kubectl port-forward` on
127.0.0.1 per pod, opened once) gives what it served in each measured run: the spread is max/min
over the stable pods, the canary share the canary pods' part of all. The same readings, and
Traefik's own /metrics, give the CPU seconds Traefik and the model pods spent per request.
/proc/loadavg is recorded before and after every measured run: the machine is shared, so compare
ratios.

Run: `make bench` or `.venv/bin/python benchmarks/bench_gateway.py [--seconds S] [--warmup S]
[--rounds N]`, as root (nsenter; the cluster needs it anyway), after `make bootstrap`. The plot
needs benchmarks/peers/.venv-plot (`scripts/bootstrap.sh bench_peers`; `make bench` runs it).
Results: benchmarks/results/gateway.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
POST_LUA = REPO / "benchmarks" / "peers" / "post.lua"
PLOT_VENV = REPO / "benchmarks" / "peers" / ".venv-plot"
CLUSTER = "mlplatform-gwbench"
NAMESPACE = "ml-models"
MODEL = "ml-model-1"
GATEWAY_NAMESPACE = "mlplatform-gateway"
MODEL_PORT = 8080
GATEWAY_POD_PORT = 8000
GATEWAY_ADMIN_PORT = 9100  # Traefik's /metrics
CANARY_WEIGHT = 20
STABLE_REPLICAS, CANARY_REPLICAS = 3, 2
SUCCESS = "model_infer_request_success_total"
LOAD_CPU = 1
LEVELS = ((8, 2), (1, 1))
"""(connections, threads) of wrk: under load, then one request at a time."""
ROLES = {"gateway": ("gateway",), "model": ("stable", "canary"), "wrk": ()}
"""Who spends CPU per request: the gateway's pods, the model pods, the load generator."""
GATEWAY_PATHS = frozenset({"gateway", "gateway-service", "host"})
"""Paths whose requests the HTTPRoute splits by weight (the canary share is theirs to keep)."""
# What the throwaway copy of the project leaves out: VCS data, state, caches, environments (linked).
SKIP_COPY = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venv-*",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".pulumi-state",
    "build",
    "*.egg-info",
    "results",
    "tests",
    "benchmarks",
)


def log(message: str) -> None:
    print(f"[bench_gateway {time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


# ------------------------------------------------------------------------------ cluster and stack


def tool_env(cluster_name: str = CLUSTER) -> dict[str, str]:
    """scripts/env.sh for a bench cluster: tools on PATH, offline Pulumi, its kubeconfig."""
    out = subprocess.run(
        ["bash", "-c", f"source {REPO}/scripts/env.sh && env -0"],
        check=True,
        capture_output=True,
        env={**os.environ, "MLP_CLUSTER": cluster_name, "KUBECONFIG": ""},
    ).stdout
    return dict(i.split("=", 1) for i in out.decode().split("\0") if "=" in i)


def cluster(env: dict[str, str], command: str) -> None:
    subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), command], env=env, check=True)


def cluster_layout(env: dict[str, str]) -> dict[str, str]:
    """The bench cluster's names, addresses and ports (`scripts/cluster.sh env`)."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster.sh"), "env"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


EVICTION_FLOOR_GIB = 2  # nodefs.available in scripts/nodes.sh


def check_disk(margin_gib: float = 2.0) -> None:
    """The nodes' kubelets evict pods once their filesystem (the host's) has under 2 GiB free
    (scripts/nodes.sh, evictionHard); the cluster's registry and three nodes' copies of the
    stack's images take about 1 GiB more. Refuse to start below that, rather than measure a
    stack whose pods were evicted and crowded onto one node."""
    disk = os.statvfs("/var/lib")
    free = disk.f_bavail * disk.f_frsize
    need = (EVICTION_FLOOR_GIB + margin_gib) * 2**30
    if free < need:
        raise SystemExit(
            f"{free / 2**30:.1f} GiB free on /var/lib; the nodes evict pods under "
            f"{EVICTION_FLOOR_GIB} GiB: free at least {need / 2**30:.1f} GiB first"
        )


LOCAL_REGISTRY = "localhost:5001"


def retarget(value, registry: str):
    """Every image of the default cluster's registry anywhere in a config value, from `registry`."""
    if isinstance(value, str) and value.startswith(f"{LOCAL_REGISTRY}/"):
        return registry + value[len(LOCAL_REGISTRY) :]
    if isinstance(value, dict):
        return {k: retarget(v, registry) for k, v in value.items()}
    if isinstance(value, list):
        return [retarget(v, registry) for v in value]
    return value


def stack_config(doc: dict, layout: dict[str, str]) -> dict:
    """The dev stack file trimmed for traffic: ml-model-1 at 3 stable replicas and a 2-replica v2
    canary at weight 20, no batch job, images from the bench cluster's registry, the gateway on
    the NodePort cluster-up forwards to."""
    doc = json.loads(json.dumps(doc))
    doc.pop("encryptionsalt", None)  # made from this machine's passphrase; the copy has its own
    config = doc["config"]
    registry = layout["REGISTRY"]
    config["mlplatform:registry"] = {"server": registry}
    model = next(m for m in config["mlplatform:models"] if m["name"] == MODEL)
    model["autoscaling"] = {
        "minReplicas": STABLE_REPLICAS,
        "maxReplicas": STABLE_REPLICAS,
        "signals": {"cpu": 70},
    }
    # A fixed set of pods: no VPA and no autoscaling add-ons (the autoscaling bench runs them).
    model.pop("vpa", None)
    config.pop("mlplatform:autoscalers", None)
    model["canary"] = {"version": "v2", "weight": CANARY_WEIGHT, "replicas": CANARY_REPLICAS}
    config.pop("mlplatform:batchJobs", None)
    config.update(retarget(config, registry))
    gateway = config["mlplatform:ingress"]["gateway"]
    gateway["nodePort"] = int(layout["GATEWAY_NODE_PORT"])
    return doc


def deploy(work: Path, env: dict[str, str], layout: dict[str, str]) -> tuple[dict, float]:
    """`pulumi up` of the trimmed dev stack from a copy of the project; returns the benchmarked
    model's config and how long `up` took."""
    project = work / "project"
    shutil.copytree(REPO, project, ignore=SKIP_COPY, symlinks=True)
    for venv in (".venv", "policy/.venv"):
        (project / venv).symlink_to((REPO / venv).resolve())
    stack_file = project / "Pulumi.dev.yaml"
    doc = stack_config(yaml.safe_load(stack_file.read_text()), layout)
    stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    (work / "state").mkdir()
    env = dict(env, PULUMI_BACKEND_URL=f"file://{work}/state", PULUMI_CONFIG_PASSPHRASE="bench")
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
    pulumi = [env["MLP_CACHE"] + "/bin/pulumi", "--non-interactive", "--stack", "dev"]
    subprocess.run(pulumi[:2] + ["stack", "init", "dev"], cwd=project, env=env, check=True)
    started = time.monotonic()
    up = subprocess.run(
        pulumi + ["up", "--yes", "--skip-preview", "--parallel", "64"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if up.returncode != 0:
        raise SystemExit(f"pulumi up failed:\n{up.stdout[-4000:]}\n{up.stderr[-2000:]}")
    seconds = time.monotonic() - started
    log(f"dev stack up in {seconds:.0f}s")
    return next(m for m in doc["config"]["mlplatform:models"] if m["name"] == MODEL), seconds


def kubectl(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [env["MLP_CACHE"] + "/bin/kubectl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def running_pods(env: dict[str, str], namespace: str, selector: str) -> list[dict]:
    items = json.loads(kubectl(env, "get", "pods", "-n", namespace, "-l", selector, "-o", "json"))
    ready = [
        p
        for p in items["items"]
        if "deletionTimestamp" not in p["metadata"]
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]
    return sorted(ready, key=lambda p: p["metadata"]["name"])


def wait_for(what: str, check, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def sandbox_pid(env: dict[str, str], layout: dict[str, str], pod: dict) -> int:
    """The pod sandbox's process (its network namespace), through crictl on the pod's node."""
    meta = pod["metadata"]
    sock = f"{layout['CLUSTER_RUN']}/nodes/{pod['spec']['nodeName']}/containerd.sock"
    crictl = [env["MLP_CACHE"] + "/bin/crictl", "--runtime-endpoint", f"unix://{sock}"]
    query = ["pods", "-q", "--name", f"^{meta['name']}$", "--namespace", f"^{meta['namespace']}$"]
    ids = subprocess.run(
        [*crictl, *query], capture_output=True, text=True, check=True
    ).stdout.split()
    if len(ids) != 1:
        raise SystemExit(f"{meta['namespace']}/{meta['name']}: sandboxes {ids}")
    info = subprocess.run(
        [*crictl, "inspectp", ids[0]], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(info)["info"]["pid"]


def infer_body(env: dict[str, str], gateway: str, pod: str) -> dict:
    """An Open Inference Protocol request with the model's recorded sample row."""
    meta = httpx.get(f"{gateway}/models/{MODEL}/v2/models/{MODEL}", timeout=10).json()
    manifest = json.loads(
        kubectl(env, "exec", "-n", NAMESPACE, pod, "--", "cat", "/model/model.json")
    )
    row = manifest["sample"]["inputs"][0]
    tensor = meta["inputs"][0]
    return {
        "inputs": [
            {
                "name": tensor["name"],
                "shape": [1, len(row)],
                "datatype": tensor["datatype"],
                "data": row,
            }
        ]
    }


# ------------------------------------------------------------------------------ paths and load


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    via: str
    """One line for the report: what the request crosses."""
    netns_pid: int | None = None
    """A process in the network namespace to load from (a pod sandbox); None: the host's."""

    def command(self, argv: list[str]) -> list[str]:
        if self.netns_pid is None:
            return argv
        return ["nsenter", f"--net=/proc/{self.netns_pid}/ns/net", "--", *argv]


def targets(env: dict[str, str], layout: dict[str, str]) -> tuple[list[Target], dict]:
    """The five paths, and where their pods run (for the report)."""
    traefik = running_pods(env, GATEWAY_NAMESPACE, "app.kubernetes.io/name=traefik")
    stable = running_pods(
        env, NAMESPACE, f"app.kubernetes.io/name={MODEL},mlplatform.io/track=stable"
    )
    if not traefik or len(stable) != STABLE_REPLICAS:
        raise SystemExit(
            f"expected Traefik pods and {STABLE_REPLICAS} stable pods: {traefik} {stable}"
        )
    client = traefik[0]
    client_node = client["spec"]["nodeName"]
    # The gateway to load: another Traefik pod, so the client's requests cross the network to it
    # as they do to a model pod; the client's own pod when it is the only one.
    gateway_pod = traefik[1] if len(traefik) > 1 else client
    # Straight to a pod: one on another node than the client when there is one, like most of the
    # gateway's own requests to the replicas.
    model_pod = next((p for p in stable if p["spec"]["nodeName"] != client_node), stable[0])
    services = json.loads(kubectl(env, "get", "svc", "-n", GATEWAY_NAMESPACE, "-o", "json"))[
        "items"
    ]
    gateway_ip = next(
        s["spec"]["clusterIP"]
        for s in services
        if s["spec"].get("selector", {}).get("app.kubernetes.io/name") == "traefik"
    )
    model_ip = json.loads(kubectl(env, "get", "svc", "-n", NAMESPACE, MODEL, "-o", "json"))["spec"][
        "clusterIP"
    ]
    pid = sandbox_pid(env, layout, client)
    routed = f"/models/{MODEL}/v2/models/{MODEL}/infer"
    direct = f"/v2/models/{MODEL}/infer"
    gw_ip = gateway_pod["status"]["podIP"]
    pod_ip = model_pod["status"]["podIP"]
    paths = [
        Target(
            "gateway",
            f"http://{gw_ip}:{GATEWAY_POD_PORT}{routed}",
            "Traefik pod → model pod (HTTPRoute, weighted)",
            pid,
        ),
        Target(
            "gateway-service",
            f"http://{gateway_ip}{routed}",
            "kube-proxy → Traefik pod → model pod",
            pid,
        ),
        Target("pod", f"http://{pod_ip}:{MODEL_PORT}{direct}", "one stable model pod", pid),
        Target(
            "service",
            f"http://{model_ip}:{MODEL_PORT}{direct}",
            "kube-proxy → a stable model pod",
            pid,
        ),
        Target(
            "host",
            f"http://127.0.0.1:{layout['GATEWAY_PORT']}{routed}",
            "socat on loopback → NodePort (kube-proxy) → Traefik pod → model pod",
        ),
    ]
    placement = {
        "client": f"{client['metadata']['name']} on {client_node}",
        "gateway": f"{gateway_pod['metadata']['name']} on {gateway_pod['spec']['nodeName']}",
        "pod": f"{model_pod['metadata']['name']} on {model_pod['spec']['nodeName']}",
    }
    return paths, placement


def preflight(paths: list[Target], body: Path) -> None:
    """One request per path, each from where its load comes from: all must answer 200."""
    for target in paths:
        curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"]
        curl += ["-H", "Content-Type: application/json", "--data-binary", f"@{body}", target.url]
        code = subprocess.run(
            target.command(curl), capture_output=True, text=True, timeout=30
        ).stdout
        if code != "200":
            raise SystemExit(f"{target.name}: {target.url} answered {code or 'nothing'}")


_LATENCY = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(out: str) -> dict:
    latency = {f"p{p}_ms": float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(out)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        **latency,
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, sock.groups())) if sock else 0),
    }


def wrk(target: Target, body: Path, connections: int, threads: int, seconds: float) -> dict:
    argv = ["taskset", "-c", str(LOAD_CPU), "wrk", f"-t{threads}", f"-c{connections}"]
    argv += [f"-d{seconds:g}s", "--timeout", "10s", "--latency", "-s", str(POST_LUA), target.url]
    proc = subprocess.run(
        target.command(argv),
        capture_output=True,
        text=True,
        env=dict(os.environ, BODY_FILE=str(body), INFERENCE_HEADER_LENGTH=""),
        timeout=seconds + 60,
    )
    if proc.returncode != 0:
        raise SystemExit(f"wrk on {target.name} failed: {proc.stderr.strip()}")
    return parse_wrk(proc.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metric(text: str, name: str, labelled: bool) -> float | None:
    """Sum of a metric's samples in Prometheus text (all label sets when `labelled`)."""
    prefix = name + ("{" if labelled else " ")
    values = [
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    ]
    return sum(values) if values else None


@contextmanager
def pod_metrics(env: dict[str, str], pods: dict[str, tuple[str, int]]) -> Iterator:
    """A `kubectl port-forward` on 127.0.0.1 to each pod's metrics port ({pod: (namespace,
    port)}), kept for the whole run so that a reading costs one GET per pod; yields a function
    returning per pod its successful infer requests (`served`, model pods) and its process's CPU
    seconds (`cpu_s`) so far. The forwards are stopped by pid."""
    forwards: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        for pod, (namespace, remote) in pods.items():
            port = free_port()
            argv = [env["MLP_CACHE"] + "/bin/kubectl", "port-forward", "-n", namespace]
            argv += ["--address", "127.0.0.1", f"pod/{pod}", f"{port}:{remote}"]
            proc = subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            forwards[pod] = (proc, port)

        def read() -> dict[str, dict[str, float | None]]:
            readings = {}
            for pod, (_, port) in forwards.items():
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                readings[pod] = {
                    "served": _metric(text, SUCCESS, labelled=True) or 0.0,
                    "cpu_s": _metric(text, "process_cpu_seconds_total", labelled=False),
                }
            return readings

        def answering() -> bool:
            try:
                return bool(read())
            except httpx.HTTPError:
                return False

        wait_for("port-forwards to the pods' metrics", answering, timeout=60)
        yield read
    finally:
        for proc, _ in forwards.values():
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def _delta(before: dict, after: dict, key: str) -> dict[str, float | None]:
    return {
        pod: None
        if after[pod][key] is None or before[pod][key] is None
        else after[pod][key] - before[pod][key]
        for pod in after
    }


def measure(
    paths: list[Target], body: Path, read, model_pods: set[str], args: argparse.Namespace
) -> list[dict]:
    """Every path at every load level, paths alternating within a round."""
    runs = []
    for connections, threads in LEVELS:
        for round_ in range(args.rounds):
            for target in paths:
                wrk(target, body, connections, threads, args.warmup)
                before, load_before = read(), loadavg()
                client_cpu = _children_cpu()
                result = wrk(target, body, connections, threads, args.seconds)
                client_cpu = _children_cpu() - client_cpu
                after, load_after = read(), loadavg()
                served, cpu = _delta(before, after, "served"), _delta(before, after, "cpu_s")
                run = {
                    "path": target.name,
                    "connections": connections,
                    "threads": threads,
                    "round": round_,
                    **result,
                    "served": {pod: n for pod, n in served.items() if pod in model_pods},
                    "cpu_s": cpu | {"wrk": client_cpu},
                    "loadavg_before": load_before,
                    "loadavg_after": load_after,
                }
                runs.append(run)
                log(
                    f"{target.name:16} c={connections} round {round_ + 1}: {result['rps']:.0f} "
                    f"req/s, p50 {result.get('p50_ms', 0):.2f} ms, p99 "
                    f"{result.get('p99_ms', 0):.2f} ms, errors {result['errors']}, load "
                    f"{load_before[0]} -> {load_after[0]}"
                )
    return runs


# ------------------------------------------------------------------------------ report


def _cpu_ms(runs: list[dict], roles: dict[str, str], role: str, requests: float) -> float | None:
    """CPU ms that `role` (gateway, model, wrk: ROLES) spent per request over `runs`."""
    values = [
        seconds
        for run in runs
        for pod, seconds in run["cpu_s"].items()
        if (pod == "wrk" if role == "wrk" else roles.get(pod) in ROLES[role])
    ]
    if not requests or any(v is None for v in values):
        return None
    return 1000 * sum(values) / requests


def summarize(runs: list[dict], roles: dict[str, str]) -> list[dict]:
    """Medians per path and level; per-pod counts and CPU summed over the rounds; ratios to
    `pod`. `roles`: each pod's role, stable, canary or gateway."""
    canary = {pod for pod, role in roles.items() if role == "canary"}
    rows = []
    for connections, _ in LEVELS:
        level = [r for r in runs if r["connections"] == connections]
        for path in dict.fromkeys(r["path"] for r in level):
            group = [r for r in level if r["path"] == path]
            served: dict[str, float] = {}
            for run in group:
                for pod, n in run["served"].items():
                    served[pod] = served.get(pod, 0.0) + n
            stable = [n for pod, n in served.items() if pod not in canary]
            total = sum(served.values())
            share = sum(n for pod, n in served.items() if pod in canary) / total if total else None
            spread = (
                max(stable) / min(stable) if path != "pod" and stable and min(stable) > 0 else None
            )
            loads = [r["loadavg_before"][0] for r in group] + [r["loadavg_after"][0] for r in group]
            sent = sum(r["requests"] for r in group)

            rows.append(
                {
                    "path": path,
                    "connections": connections,
                    "threads": group[0]["threads"],
                    "rounds": len(group),
                    "rps": statistics.median(r["rps"] for r in group),
                    "p50_ms": statistics.median(r["p50_ms"] for r in group),
                    "p99_ms": statistics.median(r["p99_ms"] for r in group),
                    "errors": sum(r["errors"] for r in group),
                    "sent": sent,
                    "counted": total,
                    "served": served,
                    "stable_spread": spread,
                    "stable_idle": sum(1 for n in stable if n == 0) if path != "pod" else None,
                    "canary_share": share,
                    "canary_share_error": abs(share - CANARY_WEIGHT / 100)
                    if share is not None and path in GATEWAY_PATHS
                    else None,
                    "cpu_ms_per_request": {
                        "gateway": _cpu_ms(group, roles, "gateway", total),
                        "model": _cpu_ms(group, roles, "model", total),
                        "wrk": _cpu_ms(group, roles, "wrk", sent),
                    },
                    "loadavg_1m_min": min(loads),
                    "loadavg_1m_max": max(loads),
                }
            )
    for row in rows:
        pod = next(r for r in rows if r["path"] == "pod" and r["connections"] == row["connections"])
        for key in ("rps", "p50_ms", "p99_ms"):
            row[f"{key}_vs_pod"] = row[key] / pod[key] if pod[key] else None
    return rows


def _x(value: float | None, fmt: str = ".2f") -> str:
    return "—" if value is None else f"{value:{fmt}}"


def _spread(row: dict) -> str:
    if row["stable_idle"]:
        return f"∞ ({row['stable_idle']} of {STABLE_REPLICAS} served none)"
    return _x(row["stable_spread"], ".3f")


def _share(row: dict) -> str:
    if row["canary_share_error"] is None:
        return "—"
    return f"{row['canary_share']:.1%} ({row['canary_share_error'] * 100:.1f} pt)"


def _placement(report: dict) -> str:
    """Which node each kind of pod ran on, e.g. `stable: node-1, node-2, node-3`."""
    by_role: dict[str, Counter] = {}
    for info in report["pods"].values():
        by_role.setdefault(info["role"], Counter())[info["node"].removeprefix(f"{CLUSTER}-")] += 1
    return "; ".join(
        f"{role} " + ", ".join(f"{node} ×{n}" for node, n in sorted(nodes.items()))
        for role, nodes in by_role.items()
    )


def markdown(report: dict) -> str:
    config, machine, rows = report["config"], report["machine"], report["summary"]
    vias = {p["name"]: p["via"] for p in report["paths"]}
    resources = report["model_resources"]
    where = report["placement"]
    pods = sorted(report["pods"], key=lambda n: (report["pods"][n]["role"], n))
    pods = [n for n in pods if report["pods"][n]["role"] in ("stable", "canary")]
    lines = [
        "# Through the gateway vs straight to a pod vs the Service",
        "",
        f"Run {report['started']} on {machine['cpu']} ({machine['cpus']} CPUs), cluster "
        f"`{CLUSTER}` (3 real nodes), by `benchmarks/bench_gateway.py`. Stack: the dev stack "
        f"trimmed as in tests/integration/test_gateway_traffic.py: {MODEL} at {STABLE_REPLICAS} "
        f"stable replicas and a {CANARY_REPLICAS}-replica v2 canary at weight {CANARY_WEIGHT} "
        f"(each pod {resources['requests']['cpu']} CPU requested, {resources['limits']['cpu']} "
        "limit), 2 Traefik pods (1 CPU limit each), ml-model-2 and Prometheus as in dev. "
        f"Pods by node: {_placement(report)}.",
        "",
        f"Load: wrk pinned to CPU {LOAD_CPU} (taskset), POST of an Open Inference Protocol infer "
        "request (1 row: the model's recorded sample); per load level and path "
        f"{config['rounds']} rounds of {config['warmup']:g} s warm-up + {config['seconds']:g} s "
        "measured, the paths alternating within a round; medians of the rounds. Every path but "
        f"`host` is loaded from inside {where['client']} (its own network namespace, nsenter). "
        f"`gateway` loads {where['gateway']}; `pod` loads {where['pod']}. The cluster's processes "
        "float over both CPUs, and the machine was shared with other work (load column: 1-minute "
        "load average before/after the measured runs, lowest–highest): compare ratios, not "
        "absolute numbers.",
        "",
    ]
    for connections, threads in LEVELS:
        lines += [
            f"## {connections} connection{'s' if connections > 1 else ''}, {threads} "
            f"thread{'s' if threads > 1 else ''}",
            "",
            "| path | via | req/s | p50 ms | p99 ms | req/s ÷ pod | p50 ÷ pod | p99 ÷ pod "
            f"| stable spread max/min | canary share (error vs {CANARY_WEIGHT} %) | errors "
            "| load 1 min |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in (r for r in rows if r["connections"] == connections):
            lines.append(
                f"| `{r['path']}` | {vias[r['path']]} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {_x(r['rps_vs_pod'])} | {_x(r['p50_ms_vs_pod'])} | "
                f"{_x(r['p99_ms_vs_pod'])} | {_spread(r)} | {_share(r)} | {r['errors']} | "
                f"{r['loadavg_1m_min']:.1f}–{r['loadavg_1m_max']:.1f} |"
            )
        lines.append("")
    lines += [
        "## Where the requests landed",
        "",
        "Each model pod's share of the requests it answered during the measured runs (its own "
        f"`{SUCCESS}`, read through `kubectl port-forward` before and after each run, summed "
        "over the rounds), and that count against what wrk counted (wrk stops counting at the "
        "deadline; a pod counts what it finished):",
        "",
        "| path | connections | "
        + " | ".join(f"{report['pods'][n]['role']} {n.rsplit('-', 1)[1]}" for n in pods)
        + " | pods counted / wrk counted |",
        "|---|---|" + "---|" * len(pods) + "---|",
    ]
    for r in rows:
        total = r["counted"] or 1
        shares = " | ".join(f"{r['served'].get(n, 0) / total:.1%}" for n in pods)
        lines.append(
            f"| `{r['path']}` | {r['connections']} | {shares} | {r['counted']:.0f} / {r['sent']} |"
        )
    lines += [
        "",
        "## CPU per request",
        "",
        "CPU time per answered request, from the processes' own `process_cpu_seconds_total` "
        "(Traefik's admin port, each model pod's /metrics) and wrk's rusage, summed over the "
        "rounds; on paths that bypass Traefik its column is its idle cost. Not counted: "
        "kube-proxy and the kernel's forwarding (iptables, veth, bridge), and for `host` the "
        "socat forwarder.",
        "",
        "| path | connections | Traefik pods ms | model pods ms | wrk ms |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = r["cpu_ms_per_request"]
        lines.append(
            f"| `{r['path']}` | {r['connections']} | {_x(cpu['gateway'], '.3f')} | "
            f"{_x(cpu['model'], '.3f')} | {_x(cpu['wrk'], '.3f')} |"
        )
    timing = report["seconds"]
    lines += [
        "",
        *reading(rows, report["model_resources"]["limits"]["cpu"]),
        f"Rerun: `make bench` (all benchmarks) or, as root after `make bootstrap`, "
        "`.venv/bin/python benchmarks/bench_gateway.py [--rounds N] [--seconds S] [--warmup S]`. "
        f"This run: cluster up {timing['cluster_up']:.0f} s, `pulumi up` {timing['pulumi_up']:.0f} "
        f"s, measuring {timing['measure']:.0f} s ({len(LEVELS)} levels × {len(vias)} paths × "
        f"{config['rounds']} rounds), {timing['total'] / 60:.0f} min in all. "
        "`--rounds 1 --seconds 2 --warmup 1` is a smoke run. Every run, per-pod count and load "
        "average: gateway.json.",
        "",
        "Left out, and why:",
        "- Another gateway as a peer (Envoy Gateway, ingress-nginx, Istio): none can be had on "
        "this machine, whose only sources are the Go module proxy, PyPI and Debian; Traefik is "
        "built from its Go module by bootstrap. The peers here are the paths without a gateway.",
        "- HTTPS through the gateway (dev has no TLS) and gRPC through it.",
        "- A load generator on another machine: the client, the gateway and the model pods share "
        "these 2 CPUs, so every hop's CPU time shows up in every path's latency; the 1-connection "
        "level is the least contended view of each hop's cost.",
        "- `host` includes the loopback forwarder (socat, a process per connection) that "
        "cluster-up puts in front of the NodePort, which a cluster behind a real load balancer "
        "does not have.",
        "",
    ]
    if report.get("plot"):
        lines.append(f"![p50, p99 and req/s per path]({report['plot']})")
    else:
        lines.append(f"No plot: {report.get('plot_missing')}.")
    return "\n".join(lines) + "\n"


def _cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("500m", "1") in cores."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def reading(rows: list[dict], cpu_limit: str) -> list[str]:
    """What the tables say in numbers, computed so that a rerun keeps it true."""

    def row(path: str, connections: int) -> dict:
        return next(r for r in rows if r["path"] == path and r["connections"] == connections)

    (many, _), (one, _) = LEVELS
    pod1 = row("pod", one)
    added = ", ".join(
        f"`{p}` {row(p, one)['p50_ms'] - pod1['p50_ms']:+.2f} ms"
        for p in ("gateway", "gateway-service", "service", "host")
    )
    gw, pod = row("gateway", many), row("pod", many)
    cpu = gw["cpu_ms_per_request"]
    # Straight to a pod, the model pods' CPU is (all but idle) that one pod's.
    used = [
        f"{r['cpu_ms_per_request']['model'] * r['rps'] / 1000:.2f}"
        for r in (pod, pod1)
        if r["cpu_ms_per_request"]["model"] is not None
    ]
    return [
        f"In numbers: at {one} connection, the median over straight-to-pod "
        f"({pod1['p50_ms']:.2f} ms): {added}. At {many} connections the gateway serves "
        f"{gw['rps_vs_pod']:.2f}× the req/s of one pod straight (its p99 {gw['p99_ms']:.1f} vs "
        f"{pod['p99_ms']:.1f} ms), over {STABLE_REPLICAS + CANARY_REPLICAS} replicas where `pod` "
        f"has one (CPU limit per pod as above); per request Traefik spent "
        f"{_x(cpu['gateway'], '.3f')} ms of CPU, the model pods {_x(cpu['model'], '.3f')} ms. "
        f"Through the gateway the stable replicas' spread "
        f"is {_spread(gw)} and the canary gets {_share(gw)}; the model Service balances "
        "connections, not requests (kube-proxy picks a pod per connection), so with keep-alive "
        "clients its spread follows how the few connections fell."
        + (
            f" Straight to a pod, the model pods used {' and '.join(used)} CPU at {many} and "
            f"{one} connections, against the one pod's limit of {_cores(cpu_limit):g}: `pod` "
            "runs at its CPU limit at both levels."
            if len(used) == 2
            else ""
        ),
        "",
    ]


def plot(report_json: Path, png: Path, script: str = "plot_gateway.py") -> str | None:
    """The plot, drawn by benchmarks/`script` in the plot venv (matplotlib is not in the repo
    venv); None if that venv is missing."""
    python = PLOT_VENV / "bin" / "python"
    if not python.exists():
        return None
    drawer = REPO / "benchmarks" / script
    subprocess.run([str(python), str(drawer), str(report_json), str(png)], check=True)
    return png.name


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def write_report(report: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / "gateway.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    report["plot"] = plot(json_path, RESULTS / "gateway.png")
    if report["plot"] is None:
        report["plot_missing"] = (
            f"{PLOT_VENV} is missing (`scripts/bootstrap.sh bench_peers` makes it)"
        )
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md = RESULTS / "gateway.md"
    md.write_text(markdown(report))
    return md


# ------------------------------------------------------------------------------ main


def run(args: argparse.Namespace, env: dict[str, str], work: Path) -> dict:
    layout = cluster_layout(env)
    model, up_seconds = deploy(work, env, layout)
    gateway = f"http://127.0.0.1:{layout['GATEWAY_PORT']}"

    def routed() -> bool:
        try:
            url = f"{gateway}/models/{MODEL}/v2/health/ready"
            return httpx.get(url, timeout=2).is_success
        except httpx.HTTPError:
            return False

    wait_for("the gateway to route to ml-model-1", routed, timeout=180)
    selector = f"app.kubernetes.io/name={MODEL}"
    wait_for(
        f"{STABLE_REPLICAS + CANARY_REPLICAS} Ready pods of {MODEL}",
        lambda: len(running_pods(env, NAMESPACE, selector)) == STABLE_REPLICAS + CANARY_REPLICAS,
        timeout=300,
    )
    pods = running_pods(env, NAMESPACE, selector)
    traefik = running_pods(env, GATEWAY_NAMESPACE, "app.kubernetes.io/name=traefik")
    roles = {p["metadata"]["name"]: p["metadata"]["labels"]["mlplatform.io/track"] for p in pods}
    roles |= {p["metadata"]["name"]: "gateway" for p in traefik}
    body = work / "infer.json"
    body.write_text(json.dumps(infer_body(env, gateway, pods[0]["metadata"]["name"])))
    paths, placement = targets(env, layout)
    preflight(paths, body)
    log(f"paths: {', '.join(p.name for p in paths)}; placement: {placement}")
    started = time.monotonic()
    metrics = {p["metadata"]["name"]: (NAMESPACE, MODEL_PORT) for p in pods}
    metrics |= {p["metadata"]["name"]: (GATEWAY_NAMESPACE, GATEWAY_ADMIN_PORT) for p in traefik}
    with pod_metrics(env, metrics) as read:
        runs = measure(paths, body, read, {p["metadata"]["name"] for p in pods}, args)
    return {
        "paths": [{"name": p.name, "url": p.url, "via": p.via} for p in paths],
        "placement": placement,
        "pods": {
            p["metadata"]["name"]: {
                "role": roles[p["metadata"]["name"]],
                "node": p["spec"]["nodeName"],
            }
            for p in pods + traefik
        },
        "model_resources": model["resources"],
        "runs": runs,
        "summary": summarize(runs, roles),
        "seconds": {"pulumi_up": up_seconds, "measure": time.monotonic() - started},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="one measured wrk run")
    parser.add_argument("--warmup", type=float, default=3.0, help="wrk warm-up before each run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2 or not all(map(shutil.which, ("wrk", "taskset", "nsenter"))):
        print(
            "needs 2+ CPUs, wrk, taskset and nsenter (apt-get install wrk util-linux)",
            file=sys.stderr,
        )
        return 2
    check_disk()
    env = tool_env()
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.monotonic()
    log(f"cluster {CLUSTER}: recreating; load average {loadavg()}")
    try:
        cluster(env, "recreate")
        cluster_up = time.monotonic() - t0
        with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
            result = run(args, env, Path(tmp))
    finally:
        cluster(env, "down")
    result["seconds"] |= {"cluster_up": cluster_up, "total": time.monotonic() - t0}
    report = {
        "started": started,
        "config": vars(args) | {"levels": LEVELS, "load_cpu": LOAD_CPU},
        "machine": {"cpu": _cpu_model(), "cpus": os.cpu_count()},
        **result,
    }
    md = write_report(report)
    log(f"results: {md}")
    print(md.read_text())
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # delete the cluster on SIGTERM too
    sys.exit(main())
