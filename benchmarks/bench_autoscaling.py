"""How fast each autoscaler adds capacity after a 10x load step, and what the requests pay meanwhile
(issue: in-flight autoscaling). On a cluster of its own (`mlplatform-asbench`, three real nodes),
made at the start and deleted at the end, one run measures in turn:

  (A) the default CPU HPA    `signals: {cpu: 70}`      autoscaling/v2 HPA on metrics-server's CPU
  (B) KEDA on in-flight      `signals: {inFlight: 0.5}` ScaledObject on the Prometheus queries the
                                                        component generates: in flight at the pods
                                                        and at the gateway (docs/autoscaling.md)

with the same load against ml-model-1 through the gateway, and reports per autoscaler: the time
from the step to the first scale-up decision (the HPA's lastScaleTime), to Ready replicas at the
new level (the most replicas it asked for during the step) and to the replicas the load needs;
request latency p50/p99 during the step and per 5-second bucket. Ratios B vs A come from the same
run; the targets claimed by the issue (capacity at least 2x sooner with in-flight, a lower p99
during the step) are checked and reported as met or not.

Stack: the dev stack from a throwaway copy of the project on a throwaway file backend, trimmed:
ml-model-1 only (ml-model-2 and the batch job removed), no canary, no VPA (so no VPA add-on either;
KEDA runs in both phases), minReplicas 1, maxReplicas 3 (see MAX_REPLICAS), scale-down window 30 s,
images in the bench cluster's registry. Its CPU request equals its limit, 250m (CPU_LIMIT): the
HPA's utilization is CPU over the request, so its 70 % is 70 % of what a replica can use. `pulumi
up` switches the signals between phases (the component hands the live HPA over to KEDA); each phase
starts from 1 Ready replica, its autoscaler reading its signal, and the in-flight signal idle. The
model image is pulled on every real node first, so neither phase pays for a pull.

Load: an open-loop generator (Python asyncio, below; its own process pinned to CPU 1): a request
every 1/rate seconds whether or not earlier ones were answered, over at most 64 HTTP/1.1 keep-alive
connections to 127.0.0.1:GATEWAY_PORT (socat -> NodePort -> Traefik -> a model pod); a request that
finds no free connection waits in the client's queue, and that wait counts in its latency, which
runs from its scheduled send time. Each request: POST /models/ml-model-1/predict with 512 rows (the
model's recorded sample rows, repeated). Rows, not 32: at 32 rows one replica at a 500m limit
serves more than the gateway path carries on this 2-CPU machine (benchmarks/results/gateway.md), so
the step would be limited by the gateway, not by replicas. The rate comes from a calibration: wrk
(closed loop, 8 connections, 10 s) through the gateway against the single replica gives its
capacity C; the baseline is R = C/4 for 60 s, then 10R = 2.5 C for 240 s, so one replica cannot
keep up and 3 can. The pod's own CPU seconds during the calibration show whether
the replica, not the path, was the limit.

Sampled every second during each phase: the Deployment's spec and Ready replicas, the HPA's status
(its reading, desired replicas, lastScaleTime), and both in-flight signals from the in-cluster
Prometheus (a `kubectl port-forward` of Service monitoring-prometheus on 127.0.0.1) with the queries
the component generates (mlplatform.plan.autoscaling.signal_queries), the same in both phases, so
the plot shows what the in-flight autoscaler sees. /proc/loadavg is recorded with every sample: the
machine is shared, so read ratios.

Run: `make bench` or, as root after `make bootstrap`,
`.venv/bin/python benchmarks/bench_autoscaling.py [--quick] [--keep] [--rows N] [--max-replicas N]`
(about 25 min; --quick: 30 s baseline and 90 s step, about 15 min, results as autoscaling-quick.*;
another maxReplicas: results as autoscaling-maxN.*). --keep leaves the cluster and the throwaway
stack up. `--self-test` checks the load generator against a local
toy server (no cluster, ~30 s). The plot needs benchmarks/peers/.venv-plot
(`scripts/bootstrap.sh bench_peers`; `make bench` runs it).
Results: benchmarks/results/autoscaling.{json,md,png}.

Left out: GPU utilization as a signal (no GPU or dcgm-exporter here), rps and latencyP99Ms, scale
from zero, scale-down (only waited for between phases), micro-batching servers (inline, one request
at a time, so in-flight read at the pods saturates at 1.0 per pod), repeated or alternated rounds
(A runs first, once), a load generator on another machine (client, gateway and pods share the 2
CPUs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import httpx
import urllib3
import yaml
from bench_gateway import (
    LOAD_CPU,
    MODEL,
    MODEL_PORT,
    NAMESPACE,
    REPO,
    RESULTS,
    SKIP_COPY,
    Target,
    _cpu_model,
    check_disk,
    cluster,
    cluster_layout,
    free_port,
    kubectl,
    loadavg,
    plot,
    pod_metrics,
    retarget,
    running_pods,
    tool_env,
    wrk,
)
from kubernetes import client as k8s
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

sys.path.insert(0, str(REPO / "components"))
from mlplatform.core.names import (  # noqa: E402
    MONITORING_COMPONENT,
    PROMETHEUS_PORT,
    instance_name,
    selector_labels,
)
from mlplatform.loader import parse_stack_config  # noqa: E402
from mlplatform.plan.autoscaling import (  # noqa: E402
    gateway_rate_window,
    rate_window,
    signal_queries,
)

CLUSTER = "mlplatform-asbench"
"""Where Pulumi.dev.yaml's images live (`make cluster-up`'s registry); retargeted to the bench's."""
DEPLOYMENT = instance_name(MODEL, "stable")
"""The stable Deployment, and the HPA's name under either autoscaler."""
POD_SELECTOR = ",".join(f"{k}={v}" for k, v in selector_labels(MODEL, "stable").items())
CPU_LIMIT = "250m"
"""CPU request = limit of the model's pods. Dev's 500m made the step (2.5 replicas' worth of 512-row
requests through socat and Traefik) as large as everything these 2 CPUs can carry: with 3 replicas
the queue built during the step drained or grew depending on the machine's mood, and p99 over the
step measured that rather than the autoscaler (runs autoscaling-1501.*, -1522.*). At 250m the same
step is half the traffic, and 3 replicas leave more than a CPU to the rest."""
MAX_REPLICAS = 3
"""What the step needs (2.5 C). With 4, an autoscaler that asks for the maximum takes CPU the
gateway and generator need, which says nothing about how soon it reacted (`--max-replicas 4`;
results autoscaling-max4.*)."""
SCALE_DOWN_SECONDS = 30
"""Scale-down window: only the wait between phases depends on it."""


@dataclass(frozen=True)
class Phase:
    name: str
    label: str
    signals: dict
    autoscaler: str
    """hpa or keda: what `signals` makes the component create."""


PHASES = (
    Phase("cpu", "CPU HPA (cpu: 70)", {"cpu": 70}, "hpa"),
    Phase("in-flight", "KEDA in-flight (inFlight: 0.5)", {"inFlight": 0.5}, "keda"),
)
BASE_SHARE = 0.25
"""Baseline rate as a share of one replica's calibrated capacity."""
STEP_FACTOR = 10
ROWS = 512
CONNECTIONS = 64
REQUEST_TIMEOUT = 60.0
"""A request not answered this long after its scheduled send time counts as failed (status 0)."""
CALIBRATION_LEVEL = (8, 2)
"""wrk connections, threads of the closed-loop capacity probe."""
SAMPLE_EVERY = 1.0
BUCKET = 5.0
IDLE_IN_FLIGHT = 0.02
"""In-flight (sum over pods) below which the previous load has left the signal's rate window."""
REPLICA_BOUND = 0.85
"""The calibration measured the replica when its pod used at least this share of its CPU limit."""
TIMINGS = {
    # baseline s, step s, calibration warm-up s, calibration s
    False: (60.0, 240.0, 3.0, 10.0),
    True: (30.0, 90.0, 2.0, 5.0),
}


def log(message: str) -> None:
    print(f"[bench_autoscaling {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------ stack


def stack_config(
    doc: dict, layout: dict[str, str], signals: dict, max_replicas: int = MAX_REPLICAS
) -> dict:
    """The dev stack file trimmed for the autoscaling bench: ml-model-1 alone (no canary, no VPA),
    CPU request raised to its limit, 1..`max_replicas` replicas on `signals`, a short scale-down
    window; no batch job, no VPA add-on (KEDA stays); images from the bench cluster's registry, the
    gateway on the NodePort cluster-up forwards to. `doc` is not changed."""
    doc = retarget(json.loads(json.dumps(doc)), layout["REGISTRY"])
    doc.pop("encryptionsalt", None)  # made from this machine's passphrase; the copy has its own
    config = doc["config"]
    config["mlplatform:registry"] = {"server": layout["REGISTRY"]}
    config["mlplatform:ingress"]["gateway"]["nodePort"] = int(layout["GATEWAY_NODE_PORT"])
    config.pop("mlplatform:batchJobs", None)
    model = next(m for m in config["mlplatform:models"] if m["name"] == MODEL)
    config["mlplatform:models"] = [model]
    model.pop("vpa", None)
    model.pop("canary", None)
    resources = model["resources"]
    resources["requests"]["cpu"] = resources["limits"]["cpu"] = CPU_LIMIT
    model["autoscaling"] = {
        "minReplicas": 1,
        "maxReplicas": max_replicas,
        "scaleDownStabilizationSeconds": SCALE_DOWN_SECONDS,
        "signals": dict(signals),
    }
    # No model has a VPA left, so the VPA add-on would only take CPU from the measurement.
    config.get("mlplatform:autoscalers", {}).pop("vpa", None)
    return doc


class Stack:
    """The trimmed dev stack from a throwaway copy of the project, on a throwaway file backend;
    `up` applies one configuration of it."""

    def __init__(self, work: Path, env: dict[str, str], layout: dict[str, str]) -> None:
        self.project = work / "project"
        self.layout = layout
        shutil.copytree(REPO, self.project, ignore=SKIP_COPY, symlinks=True)
        for venv in (".venv", "policy/.venv"):
            (self.project / venv).symlink_to((REPO / venv).resolve())
        self.stack_file = self.project / "Pulumi.dev.yaml"
        self.source = yaml.safe_load(self.stack_file.read_text())
        (work / "state").mkdir()
        self.env = dict(
            env, PULUMI_BACKEND_URL=f"file://{work}/state", PULUMI_CONFIG_PASSPHRASE="bench"
        )
        self.env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        self.pulumi = [env["MLP_CACHE"] + "/bin/pulumi", "--non-interactive", "--stack", "dev"]
        init = self.pulumi[:2] + ["stack", "init", "dev"]
        subprocess.run(init, cwd=self.project, env=self.env, check=True)

    def config(self, signals: dict, max_replicas: int) -> dict:
        """The stack file for `signals`, validated as the program will (fails before `up`)."""
        doc = stack_config(self.source, self.layout, signals, max_replicas)
        parse_stack_config(doc["config"], "dev", self.project)
        return doc

    def up(self, doc: dict, what: str) -> float:
        self.stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        started = time.monotonic()
        up = subprocess.run(
            self.pulumi + ["up", "--yes", "--skip-preview", "--parallel", "64"],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if up.returncode != 0:
            raise SystemExit(
                f"pulumi up ({what}) failed:\n{up.stdout[-4000:]}\n{up.stderr[-2000:]}"
            )
        seconds = time.monotonic() - started
        log(f"pulumi up ({what}) in {seconds:.0f}s")
        return seconds


def in_flight_signal(doc: dict, project: Path) -> dict:
    """The PromQL the component generates for ml-model-1's in-flight triggers (from the phase-B
    stack file): read at the pods and at the gateway, their rate windows, and where the
    monitoring stack's Prometheus answers them."""
    config = parse_stack_config(doc["config"], "dev", project)
    model = next(m for m in config.models if m.name == MODEL)
    window = rate_window(config.monitoring.scrape_interval)
    gateway_window = gateway_rate_window(config, model)
    scaling = config.effective_autoscaling(model)
    queries = {
        q.name: q
        for q in signal_queries(config.namespaces.models, MODEL, scaling, window, gateway_window)
    }
    pods, gateway = queries["in-flight"], queries.get("in-flight-gateway")
    if gateway is None:
        raise SystemExit(f"the phase-B stack reads {MODEL}'s in-flight at its pods only")
    return {
        "queries": {"pods": pods.query, "gateway": gateway.query},
        "target": pods.threshold,
        "rate_window": window,
        "gateway_rate_window": gateway_window,
        "scrape_interval": config.monitoring.scrape_interval,
        "gateway_scrape_interval": config.monitoring.gateway_scrape_interval,
        "namespace": config.monitoring.namespace,
        "service": f"{MONITORING_COMPONENT}-prometheus",
    }


# ------------------------------------------------------------------------------ cluster reads


class PortForward:
    """`kubectl port-forward` of a Service to 127.0.0.1, started again if it exits; stopped by
    its pid."""

    def __init__(self, env: dict[str, str], namespace: str, service: str, port: int) -> None:
        self.env, self.namespace, self.service, self.port = env, namespace, service, port
        self.proc: subprocess.Popen | None = None
        self.local = 0

    def url(self, wait: float) -> str:
        if self.proc is None or self.proc.poll() is not None:
            self.local = free_port()
            argv = [self.env["MLP_CACHE"] + "/bin/kubectl", "port-forward", "-n", self.namespace]
            argv += ["--address", "127.0.0.1", f"svc/{self.service}", f"{self.local}:{self.port}"]
            self.proc = subprocess.Popen(
                argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        deadline = time.monotonic() + wait
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.local)) == 0:
                    return f"http://127.0.0.1:{self.local}"
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise OSError(f"port-forward to {self.namespace}/svc/{self.service} not listening")
            time.sleep(0.2)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _condition(obj: dict | None, kind: str) -> str | None:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c.get("status") for c in conditions if c.get("type") == kind), None)


def hpa_reading(hpa: dict | None) -> float | None:
    """What the HPA last read, the largest of its metrics (they share one target, so the largest
    decides): CPU % of the request (Resource) or the per-pod average of KEDA's external metrics
    (here in flight per pod, at the pods and at the gateway)."""
    values = []
    for metric in ((hpa or {}).get("status") or {}).get("currentMetrics") or []:
        kind = metric.get("type", "")
        current = (metric.get(kind[:1].lower() + kind[1:]) or {}).get("current") or {}
        if "averageUtilization" in current:
            values.append(float(current["averageUtilization"]))
        for key in ("averageValue", "value"):
            if key in current:
                values.append(float(parse_quantity(current[key])))
    return max(values, default=None)


def _epoch(timestamp: str | None) -> float | None:
    return datetime.fromisoformat(timestamp).timestamp() if timestamp else None


class Watch:
    """Reads of the bench cluster for the sampler and the waits: the Deployment, its HPA, the
    ScaledObject, the model's pods (Kubernetes API, the bench cluster's kubeconfig), and the
    in-flight signal from the in-cluster Prometheus."""

    def __init__(
        self, env: dict[str, str], prometheus: PortForward, queries: dict[str, str]
    ) -> None:
        api = kconfig.new_client_from_config(config_file=env["KUBECONFIG"])
        self.apps, self.core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
        self.hpas, self.custom = k8s.AutoscalingV2Api(api), k8s.CustomObjectsApi(api)
        self.prometheus, self.queries = prometheus, queries

    @staticmethod
    def _get(call: Callable, *args, **kwargs) -> dict | None:
        """The object as JSON, or None when it does not exist or the API did not answer."""
        try:
            response = call(*args, **kwargs, _preload_content=False, _request_timeout=5)
            return json.loads(response.data)
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError):
            return None

    def deployment(self) -> dict | None:
        return self._get(self.apps.read_namespaced_deployment, DEPLOYMENT, NAMESPACE)

    def hpa(self) -> dict | None:
        return self._get(self.hpas.read_namespaced_horizontal_pod_autoscaler, DEPLOYMENT, NAMESPACE)

    def scaled_object(self) -> dict | None:
        return self._get(
            self.custom.get_namespaced_custom_object,
            "keda.sh",
            "v1alpha1",
            NAMESPACE,
            "scaledobjects",
            DEPLOYMENT,
        )

    def pods(self) -> list[dict] | None:
        found = self._get(self.core.list_namespaced_pod, NAMESPACE, label_selector=POD_SELECTOR)
        return None if found is None else found["items"]

    def in_flight(self, where: str = "pods", wait: float = 2.0) -> float | None:
        """An in-flight signal now (`where`: "pods" or "gateway"): the sum over the stable pods
        or the stable backend (KEDA divides by the pods)."""
        try:
            base = self.prometheus.url(wait)
            query = self.queries[where]
            answer = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=5)
            result = answer.json()["data"]["result"]
            return float(result[0]["value"][1]) if result else None
        except (OSError, httpx.HTTPError, KeyError, IndexError, ValueError):
            return None

    def sample(self, step_wall: float) -> dict:
        """One sample, `t` in seconds since the step."""
        t = time.time() - step_wall
        deployment, hpa = self.deployment() or {}, self.hpa() or {}
        spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
        hpa_status = hpa.get("status") or {}
        last_scale = _epoch(hpa_status.get("lastScaleTime"))
        return {
            "t": round(t, 3),
            "spec": spec.get("replicas"),
            "ready": status.get("readyReplicas") or 0,
            "pods": status.get("replicas") or 0,
            "hpa_desired": hpa_status.get("desiredReplicas"),
            "hpa_reading": hpa_reading(hpa),
            "hpa_last_scale": None if last_scale is None else round(last_scale - step_wall, 3),
            "in_flight": self.in_flight("pods"),
            "in_flight_gateway": self.in_flight("gateway"),
            "load1": loadavg()[0],
        }

    def unsettled(self, phase: Phase) -> str | None:
        """None once the phase can start: 1 replica Ready and no other pod, the HPA of the phase's
        autoscaler reading its metric (and the ScaledObject Ready), the in-flight signal idle;
        else what is still missing."""
        deployment = self.deployment()
        if deployment is None:
            return "no Deployment"
        status = deployment.get("status") or {}
        have = (deployment["spec"].get("replicas"), status.get("readyReplicas"))
        if have != (1, 1):
            return f"replicas (desired, Ready) {have}, want (1, 1)"
        pods = self.pods()
        if pods is None or len(pods) != 1:
            return f"{'?' if pods is None else len(pods)} pods of {DEPLOYMENT}, want 1"
        hpa = self.hpa()
        kinds = [m.get("type") for m in ((hpa or {}).get("spec") or {}).get("metrics") or []]
        want = "Resource" if phase.autoscaler == "hpa" else "External"
        if kinds[:1] != [want]:
            return f"HPA metrics {kinds or 'none'}, want {want}"
        if _condition(hpa, "ScalingActive") != "True" or hpa_reading(hpa) is None:
            return "the HPA has no reading yet"
        if phase.autoscaler == "keda" and _condition(self.scaled_object(), "Ready") != "True":
            return "ScaledObject not Ready"
        for where in self.queries:
            signal_now = self.in_flight(where, wait=30)
            if signal_now is None or signal_now > IDLE_IN_FLIGHT:
                return f"in-flight signal at the {where} {signal_now}, want <= {IDLE_IN_FLIGHT}"
        return None

    def settle(self, phase: Phase, timeout: float = 900) -> float:
        started = time.monotonic()
        reason, said = self.unsettled(phase), None
        while reason is not None:
            if time.monotonic() - started > timeout:
                raise SystemExit(f"phase {phase.name}: not settled after {timeout:.0f}s: {reason}")
            if reason != said:
                log(f"phase {phase.name}: waiting: {reason}")
                said = reason
            time.sleep(2)
            reason = self.unsettled(phase)
        return time.monotonic() - started

    def pod_times(self, step_wall: float) -> list[dict]:
        """Each model pod's creation and Ready time, in seconds since the step."""
        rows = []
        for pod in self.pods() or []:
            ready = next(
                (
                    c.get("lastTransitionTime")
                    for c in (pod.get("status") or {}).get("conditions") or []
                    if c.get("type") == "Ready" and c.get("status") == "True"
                ),
                None,
            )
            created = _epoch(pod["metadata"]["creationTimestamp"])
            rows.append(
                {
                    "name": pod["metadata"]["name"],
                    "node": (pod.get("spec") or {}).get("nodeName"),
                    "created_s": round(created - step_wall, 1),
                    "ready_s": None if ready is None else round(_epoch(ready) - step_wall, 1),
                }
            )
        return sorted(rows, key=lambda r: r["created_s"])


# ------------------------------------------------------------------------------ body, calibration


def predict_body(env: dict[str, str], pod: str, rows: int) -> dict:
    """A /predict request of `rows` rows: the model's recorded sample rows (model.json in the pod),
    repeated, at 6 significant digits (float32 values print with 17)."""
    manifest = json.loads(
        kubectl(env, "exec", "-n", NAMESPACE, pod, "--", "cat", "/model/model.json")
    )
    sample = manifest["sample"]["inputs"]
    return {
        "instances": [[float(f"{v:.6g}") for v in sample[i % len(sample)]] for i in range(rows)]
    }


def prepull(env: dict[str, str], layout: dict[str, str]) -> list[str]:
    """The model image on every real node (crictl through each node's containerd), so that no
    phase's new pods wait for a pull the other phase did not."""
    deployment = json.loads(
        kubectl(env, "get", "deploy", "-n", NAMESPACE, DEPLOYMENT, "-o", "json")
    )
    images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    nodes = kubectl(
        env,
        "get",
        "nodes",
        "-l",
        "node.mlplatform.io/kind=real",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ).split()
    crictl = env["MLP_CACHE"] + "/bin/crictl"
    for node in nodes:
        sock = f"unix://{layout['CLUSTER_RUN']}/nodes/{node}/containerd.sock"
        for image in sorted(images):
            pull = subprocess.run(
                [crictl, "--runtime-endpoint", sock, "pull", image],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if pull.returncode != 0:
                raise SystemExit(f"crictl pull {image} on {node}: {pull.stderr.strip()}")
    return nodes


def _cores(quantity: str) -> float:
    return float(parse_quantity(quantity))


def calibrate(
    env: dict[str, str], url: str, body: Path, pod: str, warmup: float, seconds: float
) -> dict:
    """One replica's capacity through the gateway: wrk, closed loop, and the pod's own CPU seconds
    over the same window (through a port-forward to its /metrics)."""
    target = Target("gateway", url, "127.0.0.1 -> socat -> NodePort -> Traefik -> the one replica")
    connections, threads = CALIBRATION_LEVEL
    with pod_metrics(env, {pod: (NAMESPACE, MODEL_PORT)}) as read:
        wrk(target, body, connections, threads, warmup)
        before = read()
        result = wrk(target, body, connections, threads, seconds)
        after = read()
    used = (after[pod]["cpu_s"] or 0.0) - (before[pod]["cpu_s"] or 0.0)
    return {
        **result,
        "connections": connections,
        "threads": threads,
        "seconds": seconds,
        "served": after[pod]["served"] - before[pod]["served"],
        "pod_cpu_cores": used / seconds if before[pod]["cpu_s"] is not None else None,
    }


# ------------------------------------------------------------------------------ open-loop load

STATUS_TIMEOUT = 0
STATUS_ERROR = -1


@dataclass(frozen=True)
class LoadPlan:
    """What the open-loop generator sends: `base_rate` req/s for `base_seconds`, then `step_rate`
    for `step_seconds`, each request at its own time whatever the earlier ones got."""

    host: str
    port: int
    path: str
    body: bytes
    base_rate: float
    base_seconds: float
    step_rate: float
    step_seconds: float
    connections: int = CONNECTIONS
    timeout: float = REQUEST_TIMEOUT
    cpu: int | None = LOAD_CPU
    """The CPU the generator's process is pinned to (None: not pinned)."""

    def offsets(self) -> list[float]:
        """Scheduled send times, seconds after the first."""
        base = [i / self.base_rate for i in range(round(self.base_rate * self.base_seconds))]
        step = [
            self.base_seconds + i / self.step_rate
            for i in range(round(self.step_rate * self.step_seconds))
        ]
        return base + step

    def payload(self) -> bytes:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body


class _Unanswered(ConnectionError):
    """The connection failed before any byte of the response: a keep-alive connection the other
    end had already closed, safe to send again on a new one."""


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> tuple[int, bool]:
    """One request on an open connection: (status, whether the connection can be kept)."""
    try:
        writer.write(payload)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise
        raise _Unanswered("closed before the response") from error
    except ConnectionError as error:
        raise _Unanswered(str(error)) from error
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    status = int(rest[:3])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") != "close" and version == "HTTP/1.1"


class ConnectionPool:
    """At most `size` keep-alive connections; a request without a free one waits, first come
    first served."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.open = 0
        self.peak = 0
        self.resent = 0

    async def request(self, payload: bytes) -> tuple[int, float]:
        """(HTTP status, seconds waited for a connection)."""
        loop = asyncio.get_running_loop()
        queued = loop.time()
        async with self._slots:
            waited = loop.time() - queued
            reused = bool(self._idle)
            while True:
                conn = self._idle.pop() if reused else await self._connect()
                keep = False
                try:
                    status, keep = await _exchange(*conn, payload)
                    return status, waited
                except _Unanswered:
                    if not reused:
                        raise
                    self.resent += 1
                    reused = False  # once more, on a new connection
                finally:
                    if keep:
                        self._idle.append(conn)
                    else:
                        conn[1].close()
                        self.open -= 1

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        conn = await asyncio.open_connection(self.host, self.port)
        self.opened += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        return conn

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self.open -= len(self._idle)
        self._idle.clear()


async def open_loop(plan: LoadPlan, start_at: float) -> dict:
    """Send `plan` from wall time `start_at`. Per request: scheduled send time (seconds after
    start_at), latency from that time (queueing in the client included), HTTP status (0: no
    answer within plan.timeout, -1: connection error), wait for a connection, and how late the
    generator got to it (its own lag: large values mean the client fell behind)."""
    offsets = plan.offsets()
    n = len(offsets)
    latency, waited, lag = [math.nan] * n, [math.nan] * n, [math.nan] * n
    status = [STATUS_ERROR] * n
    payload = plan.payload()
    pool = ConnectionPool(plan.host, plan.port, plan.connections)
    loop = asyncio.get_running_loop()
    t0 = loop.time() + (start_at - time.time())

    async def one(i: int, due: float) -> None:
        lag[i] = loop.time() - due
        try:
            async with asyncio.timeout_at(due + plan.timeout):
                status[i], waited[i] = await pool.request(payload)
        except TimeoutError:
            status[i] = STATUS_TIMEOUT
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            status[i] = STATUS_ERROR
        latency[i] = loop.time() - due

    tasks: set[asyncio.Task] = set()
    for i, offset in enumerate(offsets):
        due = t0 + offset
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks))
    pool.close()
    return {
        "offsets": offsets,
        "latency": latency,
        "status": status,
        "waited": waited,
        "lag": lag,
        "connections_opened": pool.opened,
        "connections_peak": pool.peak,
        "resent": pool.resent,
    }


def load_worker(plan: LoadPlan, out: str, ready) -> None:
    """The generator's process: pinned, tells the parent when it starts, writes its records."""
    if plan.cpu is not None and plan.cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {plan.cpu})
    start_at = time.time() + 1.0
    ready.put(start_at)
    result = asyncio.run(open_loop(plan, start_at))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["start_at"] = start_at
    Path(out).write_text(json.dumps(result))


class LoadRun:
    """The generator in a process of its own (spawned: a clean interpreter, its CPU apart from
    the sampler's), started on `with` and stopped by its pid on leaving."""

    def __init__(self, plan: LoadPlan, out: Path) -> None:
        self.plan, self.out = plan, out
        context = multiprocessing.get_context("spawn")
        self._ready = context.Queue()
        self.process = context.Process(
            target=load_worker, args=(plan, str(out), self._ready), daemon=True
        )
        self.start_at = 0.0

    def __enter__(self) -> LoadRun:
        self.process.start()
        try:
            self.start_at = self._ready.get(timeout=120)
        except queue.Empty:
            self.__exit__()
            raise SystemExit("the load generator did not start within 120 s") from None
        return self

    @property
    def deadline(self) -> float:
        """The generator's bound in wall time: its schedule, the timeout of its last requests,
        and a minute more."""
        schedule = self.plan.base_seconds + self.plan.step_seconds
        return self.start_at + schedule + self.plan.timeout + 60

    def running(self) -> bool:
        return self.process.is_alive() and time.time() < self.deadline

    def result(self) -> dict:
        self.process.join(timeout=max(0.0, self.deadline - time.time()))
        if self.process.exitcode != 0:
            raise SystemExit(f"load generator failed (exit code {self.process.exitcode})")
        return json.loads(self.out.read_text())

    def __exit__(self, *_exc) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)


# ------------------------------------------------------------------------------ analysis


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(1000 * value, 2)


def request_stats(load: dict, step_at: float, lo: float, hi: float) -> dict:
    """Requests scheduled in [lo, hi) seconds since the step (`step_at`: the step's offset in the
    generator's schedule, whose offsets ascend). Latency percentiles over every request, failed
    ones at the latency they failed after (a timeout at plan.timeout)."""
    offsets = load["offsets"]
    first, last = bisect_left(offsets, step_at + lo), bisect_left(offsets, step_at + hi)
    latencies, statuses = load["latency"][first:last], load["status"][first:last]
    return {
        "sent": last - first,
        "ok": sum(1 for s in statuses if s == 200),
        "failed": sum(1 for s in statuses if s != 200),
        "timeouts": sum(1 for s in statuses if s == STATUS_TIMEOUT),
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "max_ms": _ms(max(latencies, default=None)),
    }


def buckets(load: dict, step_at: float, base_s: float, step_s: float, width: float) -> list[dict]:
    """request_stats per `width` seconds of scheduled send time, from the baseline's start."""
    first, last = -math.ceil(base_s / width), math.ceil(step_s / width)
    return [
        {"t": k * width, **request_stats(load, step_at, k * width, (k + 1) * width)}
        for k in range(first, last)
    ]


def client_stats(load: dict, plan: LoadPlan) -> dict:
    duration = plan.base_seconds + plan.step_seconds
    lags = [v for v in load["lag"] if not math.isnan(v)]
    waits = [v for v in load["waited"] if not math.isnan(v)]
    return {
        "requests": len(load["offsets"]),
        "connections_opened": load["connections_opened"],
        "connections_peak": load["connections_peak"],
        "resent_on_new_connection": load["resent"],
        "lag_p99_ms": _ms(percentile(lags, 0.99)),
        "lag_max_ms": _ms(max(lags, default=None)),
        "connection_wait_p99_ms": _ms(percentile(waits, 0.99)),
        "cpu_s": round(load["cpu_s"], 2),
        "cpu_share": round(load["cpu_s"] / duration, 3),
    }


def _first(samples: list[dict], test: Callable[[dict], bool]) -> float | None:
    return next((s["t"] for s in samples if test(s)), None)


def phase_summary(
    samples: list[dict], load: dict, plan: LoadPlan, capacity: float, step_s: float
) -> dict:
    """What the issue asks per autoscaler, from the samples and the requests."""
    before = [s for s in samples if s["t"] < 0 and s["spec"] is not None]
    during = [s for s in samples if 0 <= s["t"] <= step_s and s["spec"] is not None]
    start = before[-1]["spec"] if before else (during[0]["spec"] if during else None)
    level = max((s["spec"] for s in during), default=start)
    events, previous = [], start
    for s in during:
        if s["spec"] != previous:
            events.append({"t": s["t"], "from": previous, "to": s["spec"]})
            previous = s["spec"]
    first_up = next((e for e in events if e["to"] > start), None) if start is not None else None
    decision = None
    if first_up is not None:
        # The HPA's own timestamp of that decision (whole seconds) when it falls between the
        # sample that saw it and the one before; else the sample's time.
        sample = next(s for s in during if s["t"] == first_up["t"])
        earlier = [s["t"] for s in during if s["t"] < first_up["t"]]
        stamp = sample["hpa_last_scale"]
        floor = (earlier[-1] if earlier else 0.0) - 1.0
        fits = stamp is not None and floor <= stamp <= sample["t"]
        decision = max(0.0, stamp) if fits else None
        decision = first_up["t"] if decision is None else decision
    needed = math.ceil(plan.step_rate / capacity - 1e-9)
    grew = level is not None and start is not None and level > start
    step_at = plan.base_seconds
    step = request_stats(load, step_at, 0.0, step_s)
    return {
        "replicas_at_step": start,
        "ready_at_step": before[-1]["ready"] if before else None,
        "new_level": level,
        "needed_replicas": needed,
        "scale_events": events,
        "first_decision_s": decision,
        "ready_at_level_s": _first(during, lambda s: s["ready"] >= level) if grew else None,
        "ready_needed_s": _first(during, lambda s: s["ready"] >= needed),
        "baseline": request_stats(load, step_at, -plan.base_seconds, 0.0),
        "step": step,
        "step_first_60s": request_stats(load, step_at, 0.0, min(60.0, step_s)),
        "served_rps_step": round(step["ok"] / step_s, 1),
        "load1": {
            "min": min((s["load1"] for s in samples), default=None),
            "max": max((s["load1"] for s in samples), default=None),
            "mean": round(sum(s["load1"] for s in samples) / len(samples), 2) if samples else None,
        },
    }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 3)


def compare(a: dict, b: dict) -> dict:
    """B vs A: times as speed-ups (A's time over B's: above 1, B was sooner), latencies as B over
    A (below 1, B was lower); the issue's two targets, met or not."""
    sooner = _ratio(a["ready_at_level_s"], b["ready_at_level_s"])
    if sooner is None:
        # One side never got there within the step: only B getting there meets the target.
        capacity_met = b["ready_at_level_s"] is not None
    else:
        capacity_met = sooner >= 2.0
    p99 = _ratio(b["step"]["p99_ms"], a["step"]["p99_ms"])
    return {
        "first_decision_speedup": _ratio(a["first_decision_s"], b["first_decision_s"]),
        "ready_at_level_speedup": sooner,
        "ready_needed_speedup": _ratio(a["ready_needed_s"], b["ready_needed_s"]),
        "step_p50_b_over_a": _ratio(b["step"]["p50_ms"], a["step"]["p50_ms"]),
        "step_p99_b_over_a": p99,
        "first_60s_p99_b_over_a": _ratio(
            b["step_first_60s"]["p99_ms"], a["step_first_60s"]["p99_ms"]
        ),
        "targets": [
            {
                "target": "capacity at least 2x sooner with in-flight (time to Ready at the new "
                "level, A / B)",
                "measured": sooner,
                "wanted": ">= 2",
                "met": capacity_met,
            },
            {
                "target": "lower p99 during the step with in-flight (B / A)",
                "measured": p99,
                "wanted": "< 1",
                "met": p99 is not None and p99 < 1.0,
            },
        ],
    }


# ------------------------------------------------------------------------------ report


def _x(value, fmt: str = ".1f", unit: str = "") -> str:
    return "—" if value is None else f"{value:{fmt}}{unit}"


def _at(samples: list[dict], t: float) -> dict | None:
    """The last sample at or before `t`."""
    seen = [s for s in samples if s["t"] <= t]
    return seen[-1] if seen else None


def _per_pod(sample: dict | None, key: str = "in_flight") -> float | None:
    if sample is None or sample.get(key) is None or not sample["pods"]:
        return None
    return sample[key] / sample["pods"]


def _events(summary: dict) -> str:
    return ", ".join(f"{e['from']}→{e['to']} at {e['t']:.0f} s" for e in summary["scale_events"])


def _pod_start(pods: list[dict]) -> str:
    """Created → Ready of the pods the step added, median and range."""
    spans = sorted(
        p["ready_s"] - p["created_s"] for p in pods if p["created_s"] >= 0 and p["ready_s"]
    )
    if not spans:
        return "—"
    return f"{spans[len(spans) // 2]:.0f} s ({spans[0]:.0f}–{spans[-1]:.0f}, {len(spans)} pods)"


def _story(who: str, summary: dict) -> str:
    if summary["first_decision_s"] is None:
        return f"{who} did not scale up within the step"
    ready = summary["ready_at_level_s"]
    return (
        f"{who} first scaled up at {summary['first_decision_s']:.0f} s and had "
        f"{summary['new_level']} replicas Ready "
        + ("only after the step" if ready is None else f"at {ready:.0f} s")
    )


def reading(report: dict) -> list[str]:
    """The result in sentences, computed so that a rerun keeps them true."""
    a, b = (p["summary"] for p in report["phases"])
    comparison = report["comparison"]
    capacity, p99 = comparison["targets"]
    lines = [
        f"In numbers: after the step, {_story('the CPU HPA', a)}; "
        f"{_story('KEDA on in-flight', b)}: capacity "
        + (
            f"{capacity['measured']:.2f}× as soon"
            if capacity["measured"] is not None
            else "not comparable (one phase never reached its level within the step)"
        )
        + f" (target ≥ 2×: **{'met' if capacity['met'] else 'not met'}**). p99 during the step: "
        f"{_x(a['step']['p99_ms'], '.0f', ' ms')} vs {_x(b['step']['p99_ms'], '.0f', ' ms')} "
        f"(B / A {_x(p99['measured'], '.2f')}; target < 1: "
        f"**{'met' if p99['met'] else 'not met'}**).",
        "",
    ]
    caveats = []
    for phase in report["phases"]:
        s, name = phase["summary"], phase["label"]
        if s["replicas_at_step"] != 1:
            caveats.append(f"{name} met the step at {s['replicas_at_step']} replicas, not 1.")
        if s["step"]["failed"]:
            caveats.append(
                f"{name}: {s['step']['failed']} of {s['step']['sent']} requests of the step "
                f"failed ({s['step']['timeouts']} without an answer within "
                f"{report['config']['timeout_s']:g} s); they count in the percentiles at the "
                "latency they failed after."
            )
        client = phase["client"]
        if (client["lag_p99_ms"] or 0) > 50:
            caveats.append(
                f"{name}: the generator ran late (p99 {client['lag_p99_ms']:.0f} ms behind its "
                "schedule), so it sent in bursts: the machine was short of CPU."
            )
        if s["new_level"] is not None and s["new_level"] < s["needed_replicas"]:
            caveats.append(
                f"{name} stopped at {s['new_level']} replicas, below the "
                f"{s['needed_replicas']} the load needs."
            )
    if a["new_level"] != b["new_level"]:
        caveats.append(
            f"The autoscalers settled at different levels ({a['new_level']} and "
            f"{b['new_level']} replicas): compare the times to the replicas the load needs too."
        )
    calibration = report["calibration"]
    if not calibration["replica_bound"]:
        caveats.append(
            f"The calibration's pod used {_x(calibration['pod_cpu_cores'], '.2f')} CPU of its "
            f"{calibration['cpu_limit']} limit: something else (gateway, machine) limited the "
            "probe, so the step is less than 2.5× what one replica serves."
        )
    cpus = report["machine"]["cpus"]
    busiest = max((p["summary"]["load1"]["max"] or 0) for p in report["phases"])
    if busiest > cpus:
        caveats.append(
            f"The 1-minute load average reached {busiest:.1f} on {cpus} CPUs: other work "
            "competed with the pods, the gateway and the generator."
        )
    if caveats:
        lines += ["Caveats of this run:", "", *(f"- {c}" for c in caveats), ""]
    return lines


RESULT_ROWS: tuple[tuple[str, Callable[[dict], str], str | None], ...] = (
    # (row, the cell of one phase, the comparison's key and how to read it)
    (
        "first scale-up decision, s",
        lambda p: _x(p["summary"]["first_decision_s"], ".0f"),
        "first_decision_speedup",
    ),
    (
        "Ready at the new level, s",
        lambda p: (
            f"{_x(p['summary']['ready_at_level_s'], '.0f')} ({p['summary']['new_level']} replicas)"
        ),
        "ready_at_level_speedup",
    ),
    (
        "Ready ≥ needed, s",
        lambda p: (
            f"{_x(p['summary']['ready_needed_s'], '.0f')} "
            f"({p['summary']['needed_replicas']} replicas)"
        ),
        "ready_needed_speedup",
    ),
    ("scale events (desired)", lambda p: _events(p["summary"]) or "none", None),
    ("pod created → Ready", lambda p: _pod_start(p["pods"]), None),
    ("p50 during the step, ms", lambda p: _x(p["summary"]["step"]["p50_ms"], ".0f"), "step_p50"),
    ("p99 during the step, ms", lambda p: _x(p["summary"]["step"]["p99_ms"], ".0f"), "step_p99"),
    (
        "p99 in the step's first 60 s, ms",
        lambda p: _x(p["summary"]["step_first_60s"]["p99_ms"], ".0f"),
        "first_60s_p99",
    ),
    (
        "baseline p50 / p99, ms",
        lambda p: (
            f"{_x(p['summary']['baseline']['p50_ms'], '.0f')} / "
            f"{_x(p['summary']['baseline']['p99_ms'], '.0f')}"
        ),
        None,
    ),
    (
        "step: sent / failed (no answer)",
        lambda p: (
            f"{p['summary']['step']['sent']} / {p['summary']['step']['failed']} "
            f"({p['summary']['step']['timeouts']})"
        ),
        None,
    ),
    ("step: answered req/s", lambda p: f"{p['summary']['served_rps_step']:.0f}", None),
    (
        "generator: lag p99 ms, CPU share, connections at once (opened)",
        lambda p: (
            f"{_x(p['client']['lag_p99_ms'], '.1f')}, {p['client']['cpu_share']:.2f}, "
            f"{p['client']['connections_peak']} ({p['client']['connections_opened']})"
        ),
        None,
    ),
)


def _vs(comparison: dict, key: str | None) -> str:
    if key is None:
        return ""
    if key.endswith("_speedup"):
        return f"{_x(comparison[key], '.2f')}× as soon"
    return f"{_x(comparison[f'{key}_b_over_a'], '.2f')}× A's"


def bucket_table(report: dict) -> list[str]:
    """Both phases side by side per bucket, from two buckets before the step."""
    phases, width = report["phases"], report["config"]["bucket_s"]
    columns = (
        "Ready/desired",
        "HPA reading",
        "in-flight/pod at pods",
        "at gateway",
        "p50 ms",
        "p99 ms",
        "failed",
    )
    header = ["t s"] + [f"{side} {c}" for side in ("A", "B") for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, bucket in enumerate(phases[0]["buckets"]):
        if bucket["t"] < -2 * width:
            continue
        cells = [f"{bucket['t']:+.0f}"]
        for phase in phases:
            mine = phase["buckets"][i]
            sample = _at(phase["samples"], mine["t"] + width)
            cells += [
                "—" if sample is None else f"{sample['ready']}/{sample['spec']}",
                _x(None if sample is None else sample["hpa_reading"], ".2f"),
                _x(_per_pod(sample), ".2f"),
                _x(_per_pod(sample, "in_flight_gateway"), ".2f"),
                _x(mine["p50_ms"], ".0f"),
                _x(mine["p99_ms"], ".0f"),
                str(mine["failed"]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict) -> str:
    config, machine, calibration = report["config"], report["machine"], report["calibration"]
    load, phases, comparison = report["load"], report["phases"], report["comparison"]
    loads = ", ".join(
        f"{p['label']} {p['summary']['load1']['min']:.1f}–{p['summary']['load1']['max']:.1f} "
        f"(mean {p['summary']['load1']['mean']:.1f})"
        for p in phases
    )
    timing = report["seconds"]
    flags = " --quick" if config["quick"] else ""
    if config["max_replicas"] != MAX_REPLICAS:
        flags += f" --max-replicas {config['max_replicas']}"
    lines = [
        "# Autoscaling on a 10× load step: CPU HPA vs KEDA on requests in flight",
        "",
        f"Run {report['started']} on {machine['cpu']} ({machine['cpus']} CPUs), cluster "
        f"`{CLUSTER}` (3 real nodes), by `benchmarks/bench_autoscaling.py{flags}`. "
        "**Load average** (1 min): "
        f"{machine['loadavg_start'][0]:.1f} at the start; during the phases {loads}; "
        f"{machine['loadavg_end'][0]:.1f} at the end. The machine is shared: read the ratios.",
        "",
        f"Stack: the dev stack trimmed to {MODEL} (no canary, no VPA, ml-model-2 and the batch "
        "job removed; KEDA and Prometheus as in dev), CPU request = limit = "
        f"{config['cpu_limit']} (the HPA's utilization is over the request, so 70 % is 70 % of "
        f"what a replica can use; dev asks {config['dev_cpu_request']}), "
        f"{config['min_replicas']}–{config['max_replicas']} replicas, scale-up as "
        "the component plans it (at once, double or +4 pods per 15 s), scale-down window "
        f"{config['scale_down_s']} s. (A) `signals: {{cpu: 70}}`: an HPA on metrics-server's "
        f"CPU. (B) `signals: {{inFlight: {config['in_flight_target']:g}}}`: a KEDA ScaledObject "
        f"with two triggers, in flight at the pods `{config['in_flight_queries']['pods']}` "
        f"(model servers scraped every {config['scrape_interval']}, window "
        f"{config['rate_window']}) and at the gateway "
        f"`{config['in_flight_queries']['gateway']}` (gateway scraped every "
        f"{config['gateway_scrape_interval']}, window {config['gateway_rate_window']}); the "
        "HPA follows the larger. One stack; `pulumi up` switches A to B. A ran first; "
        "before each phase: 1 Ready replica, the autoscaler reading its metric, the in-flight "
        "signal idle; the model image was pulled on every node beforehand.",
        "",
        "Load: open loop from 127.0.0.1 through the gateway (socat → NodePort → Traefik → pod), "
        f"POST /models/{MODEL}/predict with {config['rows']} rows "
        f"({config['body_bytes'] / 1024:.0f} KiB), a request every 1/rate s whatever the earlier "
        f"ones got, over at most {config['connections']} keep-alive connections; a request "
        "waiting for a connection waits in the client, and that counts in its latency (measured "
        f"from its scheduled send time; no answer within {config['timeout_s']:g} s is a "
        f"failure). Calibration (wrk, closed loop, {calibration['connections']} connections, "
        f"{calibration['seconds']:g} s, one replica): C = {calibration['rps']:.0f} req/s, the "
        f"pod using {_x(calibration['pod_cpu_cores'], '.2f')} CPU of its "
        f"{calibration['cpu_limit']} limit. Baseline R = C × {config['base_share']:g} = "
        f"{load['base_rate']:.1f} req/s for {config['baseline_s']:g} s, then "
        f"{config['step_factor']}R = {load['step_rate']:.1f} req/s "
        f"({load['step_rate'] / calibration['rps']:.2f} C) for {config['step_s']:g} s: "
        f"{load['needed_replicas']} replicas needed.",
        "",
        "## Result (times in seconds after the step)",
        "",
        f"| | (A) {phases[0]['label']} | (B) {phases[1]['label']} | B vs A |",
        "|---|---|---|---|",
        *(
            f"| {label} | {cell(phases[0])} | {cell(phases[1])} | {_vs(comparison, key)} |"
            for label, cell, key in RESULT_ROWS
        ),
        "",
        "## Targets (issue)",
        "",
        "| target | measured | wanted | met |",
        "|---|---|---|---|",
        *(
            f"| {t['target']} | {_x(t['measured'], '.2f')} | {t['wanted']} | "
            f"{'yes' if t['met'] else '**no**'} |"
            for t in comparison["targets"]
        ),
        "",
        *reading(report),
        "## Per 5-second bucket",
        "",
        "By scheduled send time; replicas Ready/desired and the signals as sampled at the end of "
        "the bucket. HPA reading: (A) CPU % of the request, (B) the larger in-flight per pod "
        "KEDA serves. In-flight/pod at the pods and at the gateway: the two queries of (B), "
        "sampled in both phases.",
        "",
        *bucket_table(report),
        "",
        "Rerun: `make bench` (all benchmarks) or, as root after `make bootstrap`, "
        "`.venv/bin/python benchmarks/bench_autoscaling.py [--quick] [--keep] [--rows N] "
        "[--max-replicas N]`. This "
        f"run: cluster up {timing['cluster_up']:.0f} s, `pulumi up` "
        + " + ".join(f"{s:.0f}" for s in timing["pulumi_up"])
        + " s, waits before the phases "
        + " + ".join(f"{s:.0f}" for s in timing["settle"])
        + f" s, {timing['total'] / 60:.0f} min in all. Samples, buckets and pods per phase: "
        f"{report['stem']}.json.",
        "",
        "Left out, and why:",
        "- GPU utilization as a signal: no GPU and no dcgm-exporter here.",
        "- The rps and latencyP99Ms signals, scale from zero, scale-down (only waited for "
        "between phases).",
        "- Micro-batching: the server runs the model inline, one request at a time, so the "
        "in-flight signal read at the pods saturates at 1.0 per pod and, like CPU at the "
        "limit, cannot tell 2× from 10× overload; read at the gateway it counts the queue too.",
        "- Repeated or alternated rounds: one phase each, A first (the model image is pulled "
        "on every node before A, and both phases start from the same state).",
        "- A load generator on another machine: the generator, the gateway and the pods share "
        f"these {machine['cpus']} CPUs; {config['max_replicas']} replicas at their limit alone "
        f"are {config['max_replicas'] * _cores(config['cpu_limit']):g} CPU.",
        "",
    ]
    if report.get("plot"):
        lines.append(f"![Ready replicas, in-flight signal and p99 over time]({report['plot']})")
    else:
        lines.append(f"No plot: {report.get('plot_missing')}.")
    return "\n".join(lines) + "\n"


def write_report(report: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = report["stem"]
    json_path = RESULTS / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    report["plot"] = plot(json_path, RESULTS / f"{stem}.png", "plot_autoscaling.py")
    if report["plot"] is None:
        report["plot_missing"] = "benchmarks/peers/.venv-plot is missing (`scripts/bootstrap.sh "
        report["plot_missing"] += "bench_peers` makes it)"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md = RESULTS / f"{stem}.md"
    md.write_text(markdown(report))
    return md


# ------------------------------------------------------------------------------ main


def measure(phase: Phase, watch: Watch, plan: LoadPlan, capacity: float, work: Path) -> dict:
    """One phase: the load in its own process, the cluster sampled every SAMPLE_EVERY s."""
    samples: list[dict] = []
    with LoadRun(plan, work / f"load-{phase.name}.json") as run:
        step_wall = run.start_at + plan.base_seconds
        log(
            f"phase {phase.name}: {plan.base_rate:.1f} req/s for {plan.base_seconds:g} s, then "
            f"{plan.step_rate:.1f} req/s for {plan.step_seconds:g} s"
        )
        next_at, said = time.monotonic(), -math.inf
        while run.running():
            sample = watch.sample(step_wall)
            samples.append(sample)
            if sample["t"] - said >= 15:
                said = sample["t"]
                log(
                    f"  t={sample['t']:+6.0f}s Ready {sample['ready']}/{sample['spec']} HPA "
                    f"{_x(sample['hpa_reading'], '.2f')} in-flight pods "
                    f"{_x(sample['in_flight'], '.2f')} gateway "
                    f"{_x(sample['in_flight_gateway'], '.2f')} load {sample['load1']}"
                )
            next_at += SAMPLE_EVERY
            time.sleep(max(0.0, next_at - time.monotonic()))
        load = run.result()
    pods = watch.pod_times(step_wall)
    summary = phase_summary(samples, load, plan, capacity, plan.step_seconds)
    log(
        f"phase {phase.name}: first decision {_x(summary['first_decision_s'], '.0f', ' s')}, "
        f"{summary['new_level']} Ready at {_x(summary['ready_at_level_s'], '.0f', ' s')}, step "
        f"p50 {_x(summary['step']['p50_ms'], '.0f')} p99 {_x(summary['step']['p99_ms'], '.0f')} "
        f"ms, failed {summary['step']['failed']}"
    )
    return {
        **asdict(phase),
        "samples": samples,
        "buckets": buckets(load, plan.base_seconds, plan.base_seconds, plan.step_seconds, BUCKET),
        "pods": pods,
        "client": client_stats(load, plan),
        "summary": summary,
    }


def run(args: argparse.Namespace, env: dict[str, str], work: Path) -> dict:
    baseline_s, step_s, warmup_s, calibration_s = TIMINGS[args.quick]
    baseline_s, step_s = args.baseline or baseline_s, args.step or step_s
    layout = cluster_layout(env)
    stack = Stack(work, env, layout)
    gateway = f"http://127.0.0.1:{layout['GATEWAY_PORT']}"
    path = f"/models/{MODEL}/predict"
    # Validated before anything is deployed: a ConfigError here costs seconds, not a stack.
    docs = {phase.name: stack.config(phase.signals, args.max_replicas) for phase in PHASES}
    signal_source = in_flight_signal(docs[PHASES[1].name], stack.project)
    calibration_doc = stack.config(PHASES[0].signals, 1)
    model = calibration_doc["config"]["mlplatform:models"][0]
    ups = [stack.up(calibration_doc, "one replica, for the calibration")]

    def routed() -> bool:
        try:
            return httpx.get(f"{gateway}/models/{MODEL}/v2/health/ready", timeout=2).is_success
        except httpx.HTTPError:
            return False

    deadline = time.monotonic() + 300
    while not (routed() and len(running_pods(env, NAMESPACE, POD_SELECTOR)) == 1):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for the gateway to route to one {MODEL} pod")
        time.sleep(1)
    pod = running_pods(env, NAMESPACE, POD_SELECTOR)[0]["metadata"]["name"]
    body = json.dumps(predict_body(env, pod, args.rows), separators=(",", ":")).encode()
    body_file = work / "predict.json"
    body_file.write_bytes(body)
    check = httpx.post(
        gateway + path, content=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    if check.status_code != 200:
        raise SystemExit(f"POST {path}: {check.status_code} {check.text[:300]}")
    nodes = prepull(env, layout)
    log(f"model image pulled on {', '.join(nodes)}")
    calibration = calibrate(env, gateway + path, body_file, pod, warmup_s, calibration_s)
    limit = model["resources"]["limits"]["cpu"]
    calibration |= {
        "cpu_limit": limit,
        "replica_bound": (calibration["pod_cpu_cores"] or 0) >= REPLICA_BOUND * _cores(limit),
    }
    capacity = calibration["rps"]
    if capacity <= 0 or calibration["errors"]:
        raise SystemExit(f"calibration failed: {calibration}")
    base_rate = capacity * BASE_SHARE
    log(
        f"calibration: {capacity:.0f} req/s on one replica (pod CPU "
        f"{_x(calibration['pod_cpu_cores'], '.2f')} of {limit}); baseline {base_rate:.1f} req/s"
    )
    plan = LoadPlan(
        host="127.0.0.1",
        port=int(layout["GATEWAY_PORT"]),
        path=path,
        body=body,
        base_rate=base_rate,
        base_seconds=baseline_s,
        step_rate=STEP_FACTOR * base_rate,
        step_seconds=step_s,
    )
    prometheus = PortForward(
        env, signal_source["namespace"], signal_source["service"], PROMETHEUS_PORT
    )
    phases, settles = [], []
    try:
        watch = Watch(env, prometheus, signal_source["queries"])
        for phase in PHASES:
            ups.append(stack.up(docs[phase.name], f"phase {phase.name}: {phase.signals}"))
            settles.append(watch.settle(phase))
            log(f"phase {phase.name}: settled in {settles[-1]:.0f}s")
            phases.append(measure(phase, watch, plan, capacity, work))
    finally:
        prometheus.close()
    return {
        "config": {
            "rows": args.rows,
            "body_bytes": len(body),
            "connections": CONNECTIONS,
            "timeout_s": REQUEST_TIMEOUT,
            "baseline_s": baseline_s,
            "step_s": step_s,
            "base_share": BASE_SHARE,
            "step_factor": STEP_FACTOR,
            "sample_every_s": SAMPLE_EVERY,
            "bucket_s": BUCKET,
            "min_replicas": 1,
            "max_replicas": args.max_replicas,
            "scale_down_s": SCALE_DOWN_SECONDS,
            "cpu_limit": limit,
            "dev_cpu_request": next(
                m for m in stack.source["config"]["mlplatform:models"] if m["name"] == MODEL
            )["resources"]["requests"]["cpu"],
            "in_flight_queries": signal_source["queries"],
            "in_flight_target": signal_source["target"],
            "rate_window": signal_source["rate_window"],
            "gateway_rate_window": signal_source["gateway_rate_window"],
            "scrape_interval": signal_source["scrape_interval"],
            "gateway_scrape_interval": signal_source["gateway_scrape_interval"],
            "load_cpu": LOAD_CPU,
        },
        "calibration": calibration,
        "load": {
            "base_rate": round(base_rate, 3),
            "step_rate": round(plan.step_rate, 3),
            "needed_replicas": math.ceil(plan.step_rate / capacity - 1e-9),
        },
        "phases": phases,
        "comparison": compare(phases[0]["summary"], phases[1]["summary"]),
        "seconds": {"pulumi_up": ups, "settle": settles},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="30 s baseline, 90 s step: a smoke run"
    )
    parser.add_argument("--keep", action="store_true", help="leave the cluster and stack up")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows per /predict request")
    parser.add_argument("--baseline", type=float, help="baseline seconds (overrides the default)")
    parser.add_argument("--step", type=float, help="step seconds (overrides the default)")
    parser.add_argument(
        "--max-replicas",
        type=int,
        default=MAX_REPLICAS,
        help=f"maxReplicas of both autoscalers (default {MAX_REPLICAS}: what the step needs)",
    )
    parser.add_argument(
        "--self-test", action="store_true", help="check the load generator on a local toy server"
    )
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    if (os.cpu_count() or 1) < 2 or not all(map(shutil.which, ("wrk", "taskset"))):
        print("needs 2+ CPUs, wrk and taskset (apt-get install wrk util-linux)", file=sys.stderr)
        return 2
    check_disk()
    env = tool_env(CLUSTER)
    started, t0, load_start = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.monotonic(), loadavg()
    minutes = 25 if not args.quick else 15
    log(f"cluster {CLUSTER}: recreating; load average {load_start}; about {minutes} min in all")
    work = Path(tempfile.mkdtemp(prefix="bench-autoscaling-"))
    try:
        cluster(env, "recreate")
        cluster_up = time.monotonic() - t0
        result = run(args, env, work)
    finally:
        if args.keep:
            log(
                f"kept: cluster {CLUSTER} (`MLP_CLUSTER={CLUSTER} scripts/cluster.sh down` "
                f"removes it); the stack in {work}/project, its state at "
                f"PULUMI_BACKEND_URL=file://{work}/state, PULUMI_CONFIG_PASSPHRASE=bench"
            )
        else:
            cluster(env, "down")
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] |= {"cluster_up": cluster_up, "total": time.monotonic() - t0}
    report = {
        "started": started,
        "stem": "autoscaling"
        + ("-quick" if args.quick else "")
        + ("" if args.max_replicas == MAX_REPLICAS else f"-max{args.max_replicas}"),
        **result,
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": loadavg(),
        },
    }
    report["config"]["quick"] = args.quick
    md = write_report(report)
    log(f"results: {md}")
    print(md.read_text())
    return 0


# ------------------------------------------------------------------------------ self-test


class ToyServer:
    """A local HTTP/1.1 server in a thread of its own: `workers` requests at a time, each taking
    `service` seconds, like the inline model server at its CPU limit. Every 7th response is
    chunked, every 40th says `Connection: close`, and after every 25th the connection is closed
    without notice (as a keep-alive timeout on the other end would, between requests)."""

    def __init__(self, workers: int, service: float) -> None:
        self.workers, self.service = workers, service
        self.served = 0
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        slots = asyncio.Semaphore(self.workers)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    )
                    await reader.readexactly(length)
                    async with slots:
                        await asyncio.sleep(self.service)
                    self.served += 1
                    n = self.served
                    content = b'{"predictions":[0]}'
                    close = n % 40 == 0
                    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    if close:
                        head += b"Connection: close\r\n"
                    if n % 7 == 0:
                        chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(content), content)
                        writer.write(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
                    else:
                        writer.write(head + b"Content-Length: %d\r\n\r\n" % len(content) + content)
                    await writer.drain()
                    if close or n % 25 == 0:
                        break
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def serve() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            async with server:
                await server.serve_forever()

        try:
            self.loop.run_until_complete(serve())
        except asyncio.CancelledError:
            pass
        left = asyncio.all_tasks(self.loop)
        self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        self.loop.close()

    def stop(self) -> None:
        def cancel_all() -> None:
            for task in asyncio.all_tasks():
                task.cancel()

        self.loop.call_soon_threadsafe(cancel_all)
        self.thread.join(5)


def self_test() -> int:
    """The open-loop generator against ToyServer, in the process the bench uses: a step to 2.5×
    one worker's capacity queues in the client and shows in latency; four workers absorb it;
    requests past their timeout fail at the timeout; stale keep-alive connections are resent."""
    failures: list[str] = []

    def expect(ok: bool, what: str) -> None:
        print(f"  {'ok ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            failures.append(what)

    work = Path(tempfile.mkdtemp(prefix="bench-autoscaling-selftest-"))
    service = 0.01  # 100 req/s per worker
    cases = [
        ("one worker, step to 2.5x its capacity", 1, 25.0, 250.0, 3.0, 4.0, 30.0),
        ("four workers, the same step", 4, 25.0, 250.0, 3.0, 4.0, 30.0),
        ("one worker, 0.5 s timeout", 1, 25.0, 250.0, 1.0, 2.0, 0.5),
    ]
    try:
        for name, workers, base_rate, step_rate, base_s, step_s, timeout in cases:
            print(
                f"{name}: {base_rate:g} req/s for {base_s:g} s, then {step_rate:g} for {step_s:g} s"
            )
            server = ToyServer(workers, service)
            plan = LoadPlan(
                "127.0.0.1", server.port, "/predict", b'{"instances":[[1]]}',
                base_rate, base_s, step_rate, step_s, timeout=timeout, cpu=None,
            )  # fmt: skip
            with LoadRun(plan, work / "load.json") as load_run:
                started = time.time()
                load = load_run.result()
            elapsed = time.time() - started
            server.stop()
            expected = round(base_rate * base_s) + round(step_rate * step_s)
            step = request_stats(load, base_s, 0.0, step_s)
            base = request_stats(load, base_s, -base_s, 0.0)
            client = client_stats(load, plan)
            cells = buckets(load, base_s, base_s, step_s, 1.0)
            print(
                f"  sent {len(load['offsets'])} in {elapsed:.1f} s; baseline p50/p99 "
                f"{base['p50_ms']}/{base['p99_ms']} ms; step p50/p99 {step['p50_ms']}/"
                f"{step['p99_ms']} ms, failed {step['failed']} (timeouts {step['timeouts']}); "
                f"connections {client['connections_peak']} at once "
                f"({client['connections_opened']} opened), resent "
                f"{client['resent_on_new_connection']}, "
                f"lag p99 {client['lag_p99_ms']} ms; per-second p99 "
                f"{[c['p99_ms'] for c in cells]}"
            )
            expect(len(load["offsets"]) == expected, f"{expected} requests scheduled")
            expect(all(not math.isnan(v) for v in load["latency"]), "every request recorded")
            expect(client["connections_peak"] <= CONNECTIONS, "at most 64 connections at once")
            expect((client["lag_p99_ms"] or 0) < 50, "the schedule kept (lag p99 < 50 ms)")
            expect(base["failed"] == 0, "no baseline request failed")
            expect(base["p50_ms"] < 60, "baseline p50 near the service time")
            if timeout >= 30:
                expect(step["failed"] == 0, "no step request failed (stale connections resent)")
                expect(client["resent_on_new_connection"] > 0, "stale connections were resent")
            if workers == 1 and timeout >= 30:
                # 1000 requests at 100/s: the last is answered ~10 s after the step began, ~6 s
                # after it was scheduled; the queue grows through the step.
                expect(step["p99_ms"] > 3000, "queueing shows in latency (step p99 > 3 s)")
                expect(
                    cells[-1]["p50_ms"] > 4 * cells[round(base_s)]["p50_ms"],
                    "latency grows through the step (its last second vs its first)",
                )
                expect(
                    abs(step["ok"] / (elapsed - base_s) - 100) < 25,
                    "answered at the server's capacity (100 req/s ± 25)",
                )
            if workers == 4:
                expect(step["p99_ms"] < 500, "four workers keep the step's p99 under 500 ms")
            if timeout < 30:
                failed = [
                    load["latency"][i] for i, s in enumerate(load["status"]) if s == STATUS_TIMEOUT
                ]
                expect(step["timeouts"] > 0, "requests past the timeout fail")
                expect(
                    all(timeout <= v < timeout + 0.2 for v in failed),
                    "they fail at the timeout",
                )
                expect(max(load["latency"]) < timeout + 0.2, "nothing waits past the timeout")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("self-test: " + ("passed" if not failures else f"{len(failures)} failed"))
    return 1 if failures else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # delete the cluster on SIGTERM too
    sys.exit(main())
