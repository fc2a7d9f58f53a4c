"""Serving benchmark against fair peers: same machine, same run, same ONNX file (issue 12).

    .venv/bin/python benchmarks/bench_serving_peers.py [--quick] [--seconds S] [--rounds N]
                                                       [--only SUBSTRING]

Every server is pinned to CPU 0 (taskset, children included); the load generator and this script
run on CPU 1. Each scenario alternates its servers, --rounds times (default 3), and reports the
median req/s, p50 and p99. Load: wrk (1 thread, 16 connections) for REST; for gRPC, ghz (built by
`scripts/bootstrap.sh bench_peers`, 16 concurrent calls over 16 connections, one Go thread), the
same client for every gRPC server. Peers' venvs come from the same bootstrap step.

Servers for ml_model_1 (RandomForest, 100 trees), all but the last one serving its ONNX file
with ONNX Runtime 1.31.1 set up alike (1 thread, sequential, no spinning: peers/ort_session.py):
  ours              the model server (models/serving), HTTP and gRPC in one process, its defaults
                    (each request calls the model inline)
  ours-batched      the same with MAX_BATCH_SIZE=1024: requests read in the same turn of the
                    event loop merged into one ONNX Runtime call
  kserve-onnx       KServe 0.21 ModelServer + an ONNX Runtime model class (peers/kserve_onnx.py)
  mlserver-onnx     MLServer 1.7.1 + an ONNX Runtime custom runtime (peers/mlserver_onnx.py)
  mlserver-onnx-batched  the same with MLServer's adaptive batching (up to 16 requests, 2 ms)
  pytriton-onnx     Triton 2.51 through PyTriton 0.7, Python backend (peers/pytriton_onnx.py)
  mlserver-sklearn  MLServer 1.7.1 + mlserver-sklearn on model.joblib, its default settings
For ml_model_2 (Keras MLP) over /predict: ours (ONNX Runtime) against FastAPI + TensorFlow calling
the Keras model through a tf.function and through model.predict() (peers/fastapi_tf_server.py).

Scenarios: 1 and 100 rows over REST JSON, the REST binary tensor extension (binary inputs and
outputs) and gRPC (raw_input_contents). A server missing a protocol sits that scenario out.
Before measuring, each server answers one request of each of its scenarios and its probabilities
are checked against ONNX Runtime's in this process (scikit-learn's, for mlserver-sklearn).

Machine load: /proc/loadavg before and after each scenario, and the CPU time that processes
outside the benchmark (other users of the machine) took during the measured runs.
Results: benchmarks/results/serving-peers.{json,md,png} (serving-peers-quick.* for --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_serving import (
    CACHE,
    CONNECTIONS,
    LOAD_CPU,
    MODELS,
    PEERS,
    RESULTS,
    ROOT,
    SERVER_CPU,
    UVICORN_FAST,
    Running,
    ServerSpec,
    _cpu_model,
    free_port,
    log,
    our_server,
    peer_venv,
    trained_models,
    wrk,
)

PROTO = MODELS / "serving" / "protocol" / "grpc" / "grpc_predict_v2.proto"
GRPC_METHOD = "inference.GRPCInferenceService.ModelInfer"
ONNX_PEERS = ("kserve-onnx", "mlserver-onnx", "mlserver-onnx-batched", "pytriton-onnx")
"""Peers serving the same ONNX file: the ratios' denominators."""
OURS = ("ours", "ours-batched")
"""Our server's configurations, each compared with the best peer."""
BATCH_ROWS = 1024
"""ours-batched's MAX_BATCH_SIZE: all 16 requests in flight at 1 row, up to 10 at 100 rows."""
MLSERVER_BATCH = {"max_batch_size": 16, "max_batch_time": 0.002}
"""mlserver-onnx-batched's adaptive batching: up to the 16 requests in flight, waiting <= 2 ms."""

TARGETS = {
    # ours / best same-model peer, REST JSON
    "forest-1row-json": 6.0,
    "forest-100row-json": 3.0,
}
PROTOCOL_TARGET = 2.0
"""Binary and gRPC at 100 rows: at least this many times our own JSON path's req/s."""


@dataclass(frozen=True)
class Scenario:
    model: str
    rows: int
    protocol: str
    """'json', 'binary' or 'grpc' (OIP v2), or 'predict' (/predict JSON)."""
    servers: tuple[str, ...]

    @property
    def name(self) -> str:
        family = "forest" if self.model == "ml_model_1" else "tf"
        return f"{family}-{self.rows}row-{self.protocol}"


FOREST_REST = (*OURS, *ONNX_PEERS, "mlserver-sklearn")
SCENARIOS = [
    *(Scenario("ml_model_1", n, "json", FOREST_REST) for n in (1, 100)),
    # MLServer has no binary tensor extension on REST.
    *(
        Scenario("ml_model_1", n, "binary", (*OURS, "kserve-onnx", "pytriton-onnx"))
        for n in (1, 100)
    ),
    *(Scenario("ml_model_1", n, "grpc", FOREST_REST) for n in (1, 100)),
    *(
        Scenario("ml_model_2", n, "predict", ("ours", "fastapi-tf-function", "fastapi-tf-predict"))
        for n in (1, 100)
    ),
]


# ------------------------------------------------------------------------------ servers


@dataclass
class Server:
    spec: ServerSpec
    model: str
    grpc_port: int | None = None
    sklearn: bool = False


def model_settings_dir(
    work: Path, name: str, implementation: str, uri: Path, model: dict, **server
) -> Path:
    """An MLServer folder: settings.json (server) and one model folder with model-settings.json
    (`model` adds to the model's settings)."""
    root = work / name
    (root / "ml_model_1").mkdir(parents=True)
    settings = {"name": "ml_model_1", "implementation": implementation, **model}
    settings["parameters"] = {"uri": str(uri), "version": "1"}
    (root / "ml_model_1" / "model-settings.json").write_text(json.dumps(settings))
    (root / "settings.json").write_text(json.dumps(server))
    return root


def servers(models: dict[str, Path], work: Path) -> dict[str, Server]:
    """Every server of the run, on fresh ports (not started)."""
    forest = models["ml_model_1"]
    out: dict[str, Server] = {}

    def add(name: str, model: str, argv: list[str], ready: str, env: dict, port: int, **kw):
        spec = ServerSpec(name, argv, ready, env, kw.pop("cwd", PEERS), port, kw.pop("sig", 15))
        out[name] = Server(spec, model, **kw)

    ours = {
        "ml_model_1": {"ours": {}, "ours-batched": {"MAX_BATCH_SIZE": str(BATCH_ROWS)}},
        "ml_model_2": {"ours-tf": {}},
    }
    for model, configurations in ours.items():
        for name, extra in configurations.items():
            # Here with gRPC and the probe port, each on a port of its own.
            grpc_port = free_port()
            spec = our_server(name, models[model], GRPC_PORT=str(grpc_port),
                              PROBE_PORT=str(free_port()), **extra)  # fmt: skip
            out[name] = Server(spec, model, grpc_port=grpc_port)

    onnx = str(forest / "model.onnx")
    port, grpc_port = free_port(), free_port()
    env = {"MODEL_NAME": "ml_model_1", "MODEL_PATH": onnx}
    env |= {"HTTP_PORT": str(port), "GRPC_PORT": str(grpc_port)}
    python = str(peer_venv("kserve") / "bin" / "python")
    add("kserve-onnx", "ml_model_1", [python, "kserve_onnx.py"], "/v2/health/ready", env, port,
        grpc_port=grpc_port)  # fmt: skip

    port, grpc_port = free_port(), free_port()
    env = {"MODEL_NAME": "ml_model_1", "MODEL_PATH": onnx, "METRICS_PORT": str(free_port())}
    env["TRITON_WORKSPACE"] = str(work / "pytriton")
    env |= {"HTTP_PORT": str(port), "GRPC_PORT": str(grpc_port)}
    python = str(peer_venv("pytriton") / "bin" / "python")
    add("pytriton-onnx", "ml_model_1", [python, "pytriton_onnx.py"],
        "/v2/models/ml_model_1/ready", env, port, grpc_port=grpc_port)  # fmt: skip

    mlserver = str(peer_venv("mlserver") / "bin" / "mlserver")
    lean = {"parallel_workers": 0, "debug": False}
    for name, implementation, uri, model, extra in (
        # Inference in the server process: on one core, a worker process only adds IPC.
        ("mlserver-onnx", "mlserver_onnx.OnnxModel", forest / "model.onnx", {}, lean),
        ("mlserver-onnx-batched", "mlserver_onnx.OnnxModel", forest / "model.onnx",
         MLSERVER_BATCH, lean),
        # What a user gets out of the box: default settings (1 inference worker, debug logging).
        ("mlserver-sklearn", "mlserver_sklearn.SKLearnModel", forest / "model.joblib", {}, {}),
    ):  # fmt: skip
        port, grpc_port = free_port(), free_port()
        folder = model_settings_dir(
            work,
            name,
            implementation,
            uri,
            model,
            http_port=port,
            grpc_port=grpc_port,
            metrics_port=free_port(),
            **extra,
        )
        add(name, "ml_model_1", [mlserver, "start", str(folder)], "/v2/models/ml_model_1/ready",
            {"PYTHONPATH": str(PEERS)}, port, grpc_port=grpc_port,
            sklearn=name == "mlserver-sklearn")  # fmt: skip

    python = str(peer_venv("fastapi-tf") / "bin" / "python")
    for name, call in (("fastapi-tf-function", "tf.function"), ("fastapi-tf-predict", "predict")):
        port = free_port()
        argv = [python, "-m", "uvicorn", "fastapi_tf_server:app", "--port", str(port)]
        env = {"MODEL_PATH": str(models["ml_model_2"] / "model.keras"), "KERAS_CALL": call}
        add(name, "ml_model_2", [*argv, *UVICORN_FAST], "/health", env, port)
    return out


def server_for(scenario: Scenario, name: str) -> str:
    return "ours-tf" if name == "ours" and scenario.model == "ml_model_2" else name


# ------------------------------------------------------------------------------ payloads


@dataclass(frozen=True)
class Payload:
    path: Path
    header_length: int | None = None
    """Binary extension: the JSON header's length."""


def payloads(work: Path, x: dict[str, np.ndarray]) -> dict[tuple[str, str], Payload]:
    """(scenario name, 'onnx' | 'sklearn') -> request body, from the datasets' own rows."""
    sys.path.insert(0, str(MODELS))
    from serving.protocol.grpc import grpc_predict_v2_pb2 as pb

    out = {}
    for scenario in SCENARIOS:
        rows = x[scenario.model][: scenario.rows].astype(np.float32)
        for flavour in ("onnx", "sklearn"):
            tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP32"}
            # MLServer's scikit-learn runtime answers predict() unless asked for probabilities.
            outputs = [{"name": "predict_proba"}] if flavour == "sklearn" else None
            header_length = None
            if scenario.protocol == "predict":
                body = json.dumps({"instances": rows.tolist()}).encode()
            elif scenario.protocol == "json":
                doc = {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}
                body = json.dumps(doc | ({"outputs": outputs} if outputs else {})).encode()
            elif scenario.protocol == "binary":
                raw = rows.tobytes()
                tensor["parameters"] = {"binary_data_size": len(raw)}
                doc = {"inputs": [tensor], "parameters": {"binary_data_output": True}}
                header = json.dumps(doc).encode()
                body, header_length = header + raw, len(header)
            else:
                request = pb.ModelInferRequest(
                    model_name="ml_model_1", raw_input_contents=[rows.tobytes()]
                )
                request.inputs.add(name="input-0", datatype="FP32", shape=rows.shape)
                for o in outputs or []:
                    request.outputs.add(name=o["name"])
                body = request.SerializeToString()
            path = work / f"{scenario.name}-{flavour}.body"
            path.write_bytes(body)
            out[scenario.name, flavour] = Payload(path, header_length)
    return out


def infer_path(scenario: Scenario) -> str:
    return "/predict" if scenario.protocol == "predict" else "/v2/models/ml_model_1/infer"


# ------------------------------------------------------------------------------ checks


def answer_probabilities(scenario: Scenario, server: Server, payload: Payload) -> np.ndarray:
    """One request as the load generator sends it; the probabilities the server answers."""
    if scenario.protocol == "grpc":
        import grpc

        from serving.protocol.grpc import grpc_predict_v2_pb2 as pb

        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            call = channel.unary_unary(
                "/" + GRPC_METHOD.replace(".ModelInfer", "/ModelInfer"),
                response_deserializer=pb.ModelInferResponse.FromString,
            )
            response = call(payload.path.read_bytes(), timeout=30)
        outputs = {o.name: i for i, o in enumerate(response.outputs)}
        name = "predict_proba" if server.sklearn else "probabilities"
        out = response.outputs[outputs[name]]
        if response.raw_output_contents:
            dtype = np.float64 if out.datatype == "FP64" else np.float32
            return np.frombuffer(response.raw_output_contents[outputs[name]], dtype)
        return np.array(out.contents.fp64_contents or out.contents.fp32_contents)
    headers = {"Content-Type": "application/json"}
    if payload.header_length is not None:
        headers = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(payload.header_length),
        }
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.spec.port}{infer_path(scenario)}",
        data=payload.path.read_bytes(),
        headers=headers,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        length = response.headers.get("Inference-Header-Content-Length")
    if scenario.protocol == "predict":
        return np.array(json.loads(body)["probabilities"]).ravel()
    doc = json.loads(body[: int(length)] if length else body)
    offset = int(length) if length else 0
    for out in doc["outputs"]:
        size = (out.get("parameters") or {}).get("binary_data_size")
        if out["name"] in ("probabilities", "predict_proba"):
            if size is None:
                return np.array(out["data"], dtype=np.float64).ravel()
            dtype = np.float64 if out["datatype"] == "FP64" else np.float32
            return np.frombuffer(body[offset : offset + size], dtype)
        offset += size or 0
    raise ValueError(f"no probabilities in the answer: {doc}")


def check_answers(scenario: Scenario, running: dict[str, Running], table: dict, bodies) -> None:
    """Every server answers the scenario's request with the expected probabilities."""
    expected = table[scenario.model][: scenario.rows].ravel()
    for name in scenario.servers:
        server = running[server_for(scenario, name)].server
        payload = bodies[scenario.name, "sklearn" if server.sklearn else "onnx"]
        got = answer_probabilities(scenario, server, payload)
        if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-5):
            raise SystemExit(f"{scenario.name}: {name} answered {got[:4]}..., want {expected[:4]}")


# ------------------------------------------------------------------------------ load


def ghz(port: int, payload: Payload, seconds: float) -> dict:
    """One ghz run (16 calls in flight over 16 connections, one Go thread) pinned to LOAD_CPU."""
    argv = ["taskset", "-c", str(LOAD_CPU), str(ghz_binary()), "--insecure", "--cpus", "1"]
    argv += ["--proto", str(PROTO), "--import-paths", str(PROTO.parent), "--call", GRPC_METHOD]
    argv += ["--binary-file", str(payload.path), "--concurrency", str(CONNECTIONS)]
    argv += ["--connections", str(CONNECTIONS), "--duration", f"{seconds:g}s", "--timeout", "10s"]
    argv += ["--format", "json", f"127.0.0.1:{port}"]
    out = json.loads(
        subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    )
    latency = {d["percentage"]: d["latency"] / 1e6 for d in out.get("latencyDistribution") or []}
    codes = out.get("statusCodeDistribution") or {}
    # At the end of the run ghz closes its connections under the calls still in flight, which
    # then fail with "use of closed network connection", or, for a call it starts meanwhile,
    # "the client connection is closing": the client's doing, not errors.
    teardown = ("use of closed network connection", "the client connection is closing")
    errors = (out.get("errorDistribution") or {}).items()
    stopped = sum(n for e, n in errors if any(t in e for t in teardown))
    return {
        # ghz's own rps counts calls over the whole run, stopped calls included; OK calls only.
        "rps": codes.get("OK", 0) / (out["total"] / 1e9),
        "p50_ms": latency.get(50),
        "p99_ms": latency.get(99),
        "non_2xx": sum(n for code, n in codes.items() if code != "OK") - stopped,
        "socket_errors": 0,
    }


def ghz_binary() -> Path:
    path = CACHE / "bin" / "ghz"
    if not path.exists():
        raise SystemExit("no ghz: run `scripts/bootstrap.sh bench_peers` (make bench does)")
    return path


def load(scenario: Scenario, server: Server, payload: Payload, seconds: float) -> dict:
    if scenario.protocol == "grpc":
        return ghz(server.grpc_port, payload, seconds)
    return wrk(server.spec.port, infer_path(scenario), payload.path, seconds, payload.header_length)


# ------------------------------------------------------------------------------ machine load


def cpu_busy_seconds() -> float:
    """Busy CPU time of the whole machine so far (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgids: set[int]) -> float:
    """CPU time of the live processes of the given process groups (the servers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class MachineLoad:
    """CPU time taken during the measured runs by processes outside the benchmark."""

    def __init__(self, pgids: set[int]) -> None:
        self.pgids = pgids
        self.other = self.wall = 0.0

    def __enter__(self):
        self._t = time.perf_counter()
        self._busy = cpu_busy_seconds()
        self._ours = group_cpu_seconds(self.pgids) + _children_cpu() + time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        ours = group_cpu_seconds(self.pgids) + _children_cpu() + time.process_time() - self._ours
        self.other += max(0.0, cpu_busy_seconds() - self._busy - ours)
        self.wall += time.perf_counter() - self._t


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


# ------------------------------------------------------------------------------ run


class Started(Running):
    def __init__(self, server: Server, log_dir: Path) -> None:
        self.server = server
        super().__init__(server.spec, log_dir)


def request_rows() -> dict[str, np.ndarray]:
    """The rows the requests carry, per model (payloads() cuts each scenario's from them)."""
    from sklearn.datasets import load_breast_cancer, load_digits

    return {
        "ml_model_1": load_breast_cancer().data[:100].astype(np.float32),
        "ml_model_2": load_digits().data[:100].astype(np.float32),
    }


def expected_probabilities(models: dict[str, Path]) -> tuple[dict, dict]:
    """Request rows per model, and the ONNX Runtime probabilities for them (this process)."""
    sys.path.insert(0, str(PEERS))
    from ort_session import onnx_session

    x = request_rows()
    table = {}
    for model, rows in x.items():
        session = onnx_session(str(models[model] / "model.onnx"))
        outputs = [o.name for o in session.get_outputs()]
        name = "probabilities" if "probabilities" in outputs else outputs[0]
        table[model] = session.run([name], {session.get_inputs()[0].name: rows})[0]
    return x, table


def measure(args, models: dict[str, Path], work: Path) -> dict:
    x, table = expected_probabilities(models)
    bodies = payloads(work, x)
    specs = servers(models, work)
    scenarios = [s for s in SCENARIOS if not args.only or args.only in s.name]
    log_dir = CACHE / "bench" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for model in ("ml_model_1", "ml_model_2"):
        group = [s for s in scenarios if s.model == model]
        if not group:
            continue
        # One model's servers at a time, all of them idle but one during each run.
        needed = {server_for(s, n) for s in group for n in s.servers}
        running: dict[str, Started] = {}
        try:
            for name in sorted(needed):
                running[name] = Started(specs[name], log_dir)
                log(f"{name} ready in {running[name].start_seconds:.1f} s")
            pgids = {r.process.pid for r in running.values()}
            for scenario in group:
                check_answers(scenario, running, table, bodies)
                results[scenario.name] = run_scenario(scenario, running, bodies, pgids, args)
        finally:
            for server in running.values():
                server.stop()
    return results


def run_scenario(scenario: Scenario, running, bodies, pgids: set[int], args) -> dict:
    before = loadavg()
    runs: dict[str, list[dict]] = {}
    machine = MachineLoad(pgids)

    def target(name: str) -> tuple[Server, Payload]:
        server = running[server_for(scenario, name)].server
        return server, bodies[scenario.name, "sklearn" if server.sklearn else "onnx"]

    for name in scenario.servers:  # warm-up
        load(scenario, *target(name), 1)
    for r in range(args.rounds):
        for name in scenario.servers:
            pgid = running[server_for(scenario, name)].process.pid
            cpu = group_cpu_seconds({pgid})
            with machine:
                result = load(scenario, *target(name), args.seconds)
            # The server's own CPU time per request: what contention from other work on the
            # machine changes least (req/s drops when others take the server's core).
            cpu = group_cpu_seconds({pgid}) - cpu
            result["cpu_us_per_req"] = cpu / max(1.0, result["rps"] * args.seconds) * 1e6
            runs.setdefault(name, []).append(result)
            log(f"{scenario.name} round {r + 1}: {name} {result['rps']:.0f} req/s")
    return {
        "servers": {name: median_of(r) for name, r in runs.items()},
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "other_cpu_share": machine.other / machine.wall if machine.wall else 0.0,
    }


def median_of(runs: list[dict]) -> dict:
    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return statistics.median(values) if values else None

    return {
        "rps": med("rps"),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "cpu_us_per_req": med("cpu_us_per_req"),
        "errors": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
        "runs": runs,
    }


# ------------------------------------------------------------------------------ report


def evaluate(results: dict) -> list[dict]:
    """Ratios to the best same-model peer, and the issue's targets, by req/s and by CPU time per
    request (the second holds up better when other work takes the server's core)."""
    rows = []

    def row(check: str, rps: float, cpu: float, target: float | None) -> None:
        met = None if target is None else rps >= target and cpu >= target
        rows.append(
            {
                "check": check,
                "value": rps,
                "cpu_value": cpu,
                "target": f">= {target}" if target else "",
                "met": met,
            }
        )

    for scenario, r in results.items():
        s = r["servers"]
        peers = [n for n in ONNX_PEERS if n in s]
        for ours in (n for n in OURS if n in s and peers):
            best = max(peers, key=lambda n: s[n]["rps"])
            leanest = min(s[n]["cpu_us_per_req"] for n in peers)
            row(
                f"{scenario}: {ours} / best ONNX peer ({best})",
                s[ours]["rps"] / s[best]["rps"],
                leanest / s[ours]["cpu_us_per_req"],
                TARGETS.get(scenario),
            )
    for ours in OURS:
        for protocol in ("binary", "grpc"):
            fast = results.get(f"forest-100row-{protocol}", {}).get("servers", {}).get(ours)
            slow = results.get("forest-100row-json", {}).get("servers", {}).get(ours)
            if fast and slow:
                row(
                    f"forest-100row: {ours} {protocol} / {ours} JSON",
                    fast["rps"] / slow["rps"],
                    slow["cpu_us_per_req"] / fast["cpu_us_per_req"],
                    PROTOCOL_TARGET,
                )
    return rows


BUSY = 0.25
"""Other processes' CPU (share of a core) above which a scenario's numbers are flagged."""


def write_report(report: dict, stem: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    machine, config = report["machine"], report["config"]
    lines = [
        "# Serving benchmark: fair peers",
        "",
        f"Run {report['started']} on {machine['cpu']} ({machine['cpus']} CPUs), Python "
        f"{machine['python']}. Servers pinned to CPU {SERVER_CPU}, the load generator to CPU "
        f"{LOAD_CPU}: wrk (REST, 1 thread, {CONNECTIONS} connections) and ghz (gRPC, "
        f"{CONNECTIONS} calls in flight over {CONNECTIONS} connections). {config['rounds']} "
        f"alternating rounds of {config['seconds']:g} s, medians. Same ONNX file, ONNX Runtime "
        "1.31.1 with the same session options in every ONNX server. Generated by "
        "`benchmarks/bench_serving_peers.py` (`make bench`).",
        "",
        "Ratio: req/s over the best ONNX peer's (KServe, MLServer with and without its adaptive "
        "batching, Triton) in the same scenario; `ours` runs the server's defaults, "
        f"`ours-batched` MAX_BATCH_SIZE={BATCH_ROWS}. "
        "Load: /proc/loadavg (1 min) before -> after the scenario; others: CPU time taken by "
        "processes outside the benchmark during the measured runs, as a share of one core "
        "(0 on a quiet machine; the benchmark itself keeps both cores busy, a load of ~2). "
        "CPU µs/req: the server's own CPU time (all its processes) per answered request, which "
        "other work on the machine disturbs far less than req/s; CPU ratio: the leanest ONNX "
        "peer's CPU µs/req over this server's (above 1: fewer CPU cycles per request).",
        "",
        *_busy_warning(report),
        "| scenario | server | req/s | p50 ms | p99 ms | ratio | CPU µs/req | CPU ratio | errors "
        "| load | others |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for scenario, r in report["scenarios"].items():
        s = r["servers"]
        best = max((s[n]["rps"] for n in ONNX_PEERS if n in s), default=None)
        leanest = min((s[n]["cpu_us_per_req"] for n in ONNX_PEERS if n in s), default=None)
        load_cell = f"{r['loadavg_before'][0]:.2f} -> {r['loadavg_after'][0]:.2f}"
        other = f"{r['other_cpu_share']:.2f}"
        if r["other_cpu_share"] > BUSY:
            other += " (busy)"
        for name, m in s.items():
            cpu = m["cpu_us_per_req"]
            cells = [scenario, name, f"{m['rps']:.0f}", _ms(m["p50_ms"]), _ms(m["p99_ms"])]
            cells.append(f"{m['rps'] / best:.2f}" if best else "")
            cells += [f"{cpu:.0f}", f"{leanest / cpu:.2f}" if leanest else ""]
            lines.append("| " + " | ".join([*cells, str(m["errors"]), load_cell, other]) + " |")
    lines += [
        "",
        "Checks: met when both the req/s ratio and the CPU ratio reach the target.",
        "",
        "| check | by req/s | by CPU µs/req | target | met |",
        "|---|---:|---:|---:|---|",
    ]
    for c in report["checks"]:
        met = "" if c["met"] is None else ("yes" if c["met"] else "NO")
        cells = [c["check"], f"{c['value']:.2f}", f"{c['cpu_value']:.2f}", c["target"], met]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"![req/s per scenario]({stem}.png)",
        "",
        "Left out: MLServer in the binary scenarios (MLServer has no REST binary tensor "
        "extension). Peers' per-request log lines are off (ours logs none by default) except "
        "mlserver-sklearn's, which runs with MLServer's defaults. Triton runs from PyTriton's "
        "wheel on this CPU-only machine (its Python backend stub is pointed at this "
        "interpreter's libpython: peers/pytriton_onnx.py). The TensorFlow model's scenarios "
        "compare ours with FastAPI + TensorFlow only: the ONNX peers would serve its ONNX file "
        "through the same code as the forest's, and the run stays near 25 minutes.",
        "",
        "Where the time goes, and what would close the gaps: "
        "[serving-peers-profile.md](serving-peers-profile.md).",
    ]
    path = RESULTS / f"{stem}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _busy_warning(report: dict) -> list[str]:
    busiest = max((r["other_cpu_share"] for r in report["scenarios"].values()), default=0.0)
    if busiest <= BUSY:
        return []
    return [
        f"**The machine was busy**: other processes took up to {busiest:.2f} of a core during "
        "the measured runs (load column). The servers' req/s then swing with whoever else is "
        "running (their ratios by 20-40% between runs here, either way); the CPU columns hold up "
        "better. Rerun on a quiet machine for numbers to quote.",
        "",
    ]


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def plot(report_json: Path, png: Path) -> None:
    python = peer_venv("plot") / "bin" / "python"
    script = ROOT / "benchmarks" / "plot_serving_peers.py"
    subprocess.run([str(python), str(script), str(report_json), str(png)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s: a smoke run")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of one load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median taken)")
    parser.add_argument("--only", help="only scenarios whose name contains this")
    parser.add_argument(
        "--render", type=Path, help="only rewrite the report and plot from this results JSON"
    )
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads(args.render.read_text())
        report["checks"] = evaluate(report["scenarios"])
        stem = args.render.stem
        print(write_report(report, stem).read_text())
        plot(RESULTS / f"{stem}.json", RESULTS / f"{stem}.png")
        return 0
    if args.quick:
        args.seconds, args.rounds = 3.0, 1
    if (os.cpu_count() or 1) < 2 or not shutil.which("wrk") or not shutil.which("taskset"):
        print("needs 2+ CPUs, wrk and taskset (apt-get install wrk util-linux)", file=sys.stderr)
        return 2
    ghz_binary()
    os.sched_setaffinity(0, {LOAD_CPU})
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    models = trained_models()
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        results = measure(args, models, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "started": started,
        "config": vars(args) | {"connections": CONNECTIONS},
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "scenarios": results,
        "checks": evaluate(results),
    }
    stem = "serving-peers-quick" if args.quick or args.only else "serving-peers"
    path = write_report(report, stem)
    plot(RESULTS / f"{stem}.json", RESULTS / f"{stem}.png")
    log(f"results: {path}")
    print(path.read_text())
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the servers on SIGTERM too
    sys.exit(main())
