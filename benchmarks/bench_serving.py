"""Serving benchmark: our model server against its peers, measured in one run on one machine.

    .venv/bin/python benchmarks/bench_serving.py [--quick] [--skip-docker]

Every server is pinned to CPU 0 (taskset); wrk and this script run on CPU 1. Each scenario runs
its servers alternately, --rounds times (default 3), and reports the median req/s and p50/p99.
Results are ratios between servers measured in the same run: absolute numbers depend on the
machine and on whatever else it runs (recorded as load averages).

Scenarios (16 connections each):
  forest-1row / forest-100row  ml_model_1 (RandomForest, 100 trees) over OIP v2 /infer:
                               ours (ONNX Runtime) vs MLServer 1.7.1 + mlserver-sklearn (1 worker)
  overhead                     ours /predict (1 row) vs a plain Starlette hello-world GET
  tf-1row                      ml_model_2 (Keras MLP): ours (ONNX Runtime, no TensorFlow) vs a
                               FastAPI server calling model.predict() per request
  native-forest-1row           ours with INFERENCE_BACKEND=native (scikit-learn): micro-batching
                               (MAX_BATCH_SIZE=32) vs inline
Also: cold start (process start -> ready) for each server; with Docker, image sizes (ours vs the
train stage, which is base + tensorflow-cpu) and container start -> ready.

Peers get their own venvs, built by `scripts/bootstrap.sh bench_peers` from
benchmarks/peers/requirements-*.txt. Results: benchmarks/results/serving.{json,md}
(serving-quick.* for --quick).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
PEERS = ROOT / "benchmarks" / "peers"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = Path.home() / ".cache" / "mlplatform"
SERVER_CPU, LOAD_CPU = 0, 1
CONNECTIONS = 16

TARGETS = {
    "forest_1row_rps_vs_mlserver": 40.0,
    "forest_100row_rps_vs_mlserver": 8.0,
    "overhead_rps_vs_hello": 0.6,
    "tf_rps_vs_fastapi_predict": 20.0,
    "native_micro_batching_rps_gain": 1.0,  # informative: merging must at least not hurt
    "cold_start_seconds_max": 1.0,
    "tf_start_speedup_vs_fastapi_tf": 4.0,
    "ml_model_1_image_gb_max": 0.25,
    "tf_image_size_vs_runtime": 5.0,
}


def log(message: str) -> None:
    print(f"[bench_serving {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------ environments


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def peer_venv(name: str) -> Path:
    """A peer's venv, built by ``scripts/bootstrap.sh bench_peers`` (``make bench`` runs it) from
    benchmarks/peers/requirements-NAME.txt and linked as benchmarks/peers/.venv-NAME."""
    venv = PEERS / f".venv-{name}"
    if not (venv / "bin" / "python").exists():
        raise SystemExit(
            f"no peer venv {venv}: run `scripts/bootstrap.sh venv bench_peers` (make bench does)"
        )
    return venv


def trained_models() -> dict[str, Path]:
    """ml_model_1 and ml_model_2 trained by their model_code.py, cached by source hash."""
    out = {}
    for model in ("ml_model_1", "ml_model_2"):
        digest = _digest(MODELS / model / "model_code.py", MODELS / "serving")
        target = CACHE / "bench" / f"{model}-{digest}"
        if not (target / "model.json").exists():
            log(f"training {model} into {target}")
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run(
                [sys.executable, str(MODELS / model / "model_code.py"), "--out", str(target)],
                check=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
        out[model] = target
    return out


# ------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port: int, path: str) -> int | None:
    """Status of GET path on 127.0.0.1:port, or None when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
        return int(head.split(b" ")[1])
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class ServerSpec:
    """How to start one server and how to tell it is ready."""

    name: str
    argv: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    port: int = 0
    stop_signal: int = signal.SIGTERM


class Running:
    def __init__(self, spec: ServerSpec, log_dir: Path) -> None:
        self.spec = spec
        self.log = (log_dir / f"{spec.name}.log").open("ab")
        start = time.perf_counter()
        self.process = subprocess.Popen(
            ["taskset", "-c", str(SERVER_CPU), *spec.argv],
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: MLServer's workers stop with it
        )
        deadline = start + 180
        while http_status(spec.port, spec.ready_path) != 200:
            if self.process.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                raise RuntimeError(f"{spec.name} did not become ready; see {self.log.name}")
            time.sleep(0.005)
        self.start_seconds = time.perf_counter() - start

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, self.spec.stop_signal)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers of our own group
        except ProcessLookupError:
            pass
        self.process.wait()
        self.log.close()


# ------------------------------------------------------------------------------ load


_LAT = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(
    port: int,
    path: str,
    body: Path | None,
    seconds: float,
    header_length: int | None = None,
    think_ms: float = 0,
) -> dict:
    """One wrk run (1 thread, CONNECTIONS connections) pinned to LOAD_CPU.

    ``header_length``: the body is an OIP binary-extension one, its JSON header that long.
    ``think_ms``: each connection pauses a random time of this mean before each request
    (peers/post.lua); 0 sends back to back.
    """
    argv = [
        "taskset",
        "-c",
        str(LOAD_CPU),
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    env = dict(os.environ)
    if body is not None:
        argv += ["-s", str(PEERS / "post.lua")]
        env["BODY_FILE"] = str(body)
        env["INFERENCE_HEADER_LENGTH"] = "" if header_length is None else str(header_length)
        env["THINK_MS"] = f"{think_ms:g}"
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    lat = {p: float(v) * _UNIT_MS[u] for p, v, u in _LAT.findall(out)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(map(int, sock.groups())) if sock else 0,
    }


def median_of(runs: list[dict]) -> dict:
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "errors": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
        "runs": runs,
    }


# ------------------------------------------------------------------------------ payloads


def payloads(work: Path) -> dict[str, Path]:
    """Request bodies from the bundled datasets' own values (what a client would send)."""
    from sklearn.datasets import load_breast_cancer, load_digits

    cancer = load_breast_cancer().data
    digits = load_digits().data
    bodies = {}

    def oip(rows: np.ndarray, outputs: list[str] | None) -> dict:
        doc = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "data": rows.ravel().tolist(),
                }
            ]
        }
        if outputs:
            doc["outputs"] = [{"name": n} for n in outputs]
        return doc

    for n in (1, 100):
        # MLServer's scikit-learn runtime returns predict() unless asked for probabilities.
        bodies[f"ours-oip-{n}"] = oip(cancer[:n], None)
        bodies[f"mlserver-oip-{n}"] = oip(cancer[:n], ["predict_proba"])
    bodies["predict-1"] = {"instances": cancer[:1].tolist()}
    bodies["digits-predict-1"] = {"instances": digits[:1].tolist()}
    paths = {}
    for name, doc in bodies.items():
        paths[name] = work / f"{name}.json"
        paths[name].write_text(json.dumps(doc))
    return paths


# ------------------------------------------------------------------------------ docker


def docker_cli() -> str | None:
    """A docker client able to run BuildKit builds (buildx plugin, or a pre-23 client)."""
    for candidate in [os.environ.get("DOCKER") or "docker", "/usr/bin/docker"]:
        path = shutil.which(candidate)
        if not path or subprocess.run([path, "info"], capture_output=True).returncode != 0:
            continue
        if subprocess.run([path, "buildx", "version"], capture_output=True).returncode == 0:
            return path
        v = subprocess.run(
            [path, "version", "-f", "{{.Client.Version}}"], capture_output=True, text=True
        ).stdout
        if v.split(".")[0].isdigit() and int(v.split(".")[0]) < 23:
            return path
    return None


def docker_measurements(docker: str, rounds: int) -> dict:
    subprocess.run(["bash", str(ROOT / "scripts" / "base-images.sh")], check=True)
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    tags = {
        "ml_model_1": ("ml_model_1", None),
        "ml_model_2": ("ml_model_2", None),
        "ml_model_2_train_tensorflow": ("ml_model_2", "train"),
    }
    sizes = {}
    for label, (model, target) in tags.items():
        tag = f"mlplatform-bench/{label}:latest"
        log(f"docker build {label}")
        argv = [docker, "build", "--network", "host", "--build-arg", f"MODEL_SOURCE={model}"]
        argv += ["-f", f"models/{model}/Dockerfile", "-t", tag]
        subprocess.run(
            [*argv, *(["--target", target] if target else []), "models/"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        sizes[label] = int(
            subprocess.run(
                [docker, "image", "inspect", "-f", "{{.Size}}", tag],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    starts = []
    for _ in range(rounds):
        port = free_port()
        t0 = time.perf_counter()
        cid = subprocess.run(
            [
                docker,
                "run",
                "-d",
                "--network",
                "host",
                "--cpuset-cpus",
                str(SERVER_CPU),
                "-e",
                f"PORT={port}",
                "-e",
                "HOST=127.0.0.1",
                "mlplatform-bench/ml_model_1:latest",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        try:
            while http_status(port, "/v2/health/ready") != 200:
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError("container did not become ready")
                time.sleep(0.005)
            starts.append(time.perf_counter() - t0)
        finally:
            subprocess.run([docker, "rm", "-f", cid], capture_output=True)
    return {
        "image_bytes": sizes,
        "container_start_to_ready_seconds": {"median": statistics.median(starts), "runs": starts},
    }


# ------------------------------------------------------------------------------ model costs


def model_costs(models: dict[str, Path]) -> dict:
    """Per-call cost of the forest, native vs ONNX Runtime, in this process (one thread)."""
    sys.path.insert(0, str(MODELS))
    from serving.backends import load_backend
    from serving.manifest import load_manifest

    manifest = load_manifest(models["ml_model_1"])
    x1 = np.asarray(manifest.sample.inputs[:1], dtype=np.float32)
    out = {}
    for kind in ("native", "onnx"):
        backend = load_backend(manifest, models["ml_model_1"], kind)
        backend.predict_proba(x1)
        n = 50 if kind == "native" else 2000
        t = time.perf_counter()
        for _ in range(n):
            backend.predict_proba(x1)
        out[f"forest_1row_{kind}_ms"] = (time.perf_counter() - t) / n * 1e3
    return out


# ------------------------------------------------------------------------------ servers

# scenario -> [(server, path, body)]; each scenario's servers alternate within every round.
SCENARIOS: dict[str, list[tuple[str, str, str | None]]] = {
    "forest-1row (OIP /infer)": [
        ("ours-ml_model_1", "/v2/models/ml_model_1/infer", "ours-oip-1"),
        ("mlserver", "/v2/models/ml_model_1/infer", "mlserver-oip-1"),
    ],
    "forest-100row (OIP /infer)": [
        ("ours-ml_model_1", "/v2/models/ml_model_1/infer", "ours-oip-100"),
        ("mlserver", "/v2/models/ml_model_1/infer", "mlserver-oip-100"),
    ],
    "overhead (1 row /predict vs hello GET)": [
        ("ours-ml_model_1", "/predict", "predict-1"),
        ("starlette-hello", "/", None),
    ],
    "tf-1row (/predict)": [
        ("ours-ml_model_2", "/predict", "digits-predict-1"),
        ("fastapi-tf-predict", "/predict", "digits-predict-1"),
    ],
    "native-forest-1row (/predict, scikit-learn)": [
        ("ours-native-batched", "/predict", "predict-1"),
        ("ours-native-inline", "/predict", "predict-1"),
    ],
}
# Same uvicorn settings as our server, so ratios measure the application, not the stack.
UVICORN_FAST = [
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
]


def mlserver_model_dir(work: Path, model_dir: Path) -> Path:
    """MLServer reads its settings and the model from one folder."""
    root = work / "mlserver"
    (root / "ml_model_1").mkdir(parents=True)
    shutil.copy(model_dir / "model.joblib", root / "ml_model_1" / "model.joblib")
    settings = {
        "name": "ml_model_1",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }
    (root / "ml_model_1" / "model-settings.json").write_text(json.dumps(settings))
    return root


def our_server(name: str, model_dir: Path, **env: str) -> ServerSpec:
    """Our model server (`python -m serving`) for ``model_dir`` on a fresh port; ``env`` overrides
    its defaults (MAX_BATCH_SIZE, INFERENCE_BACKEND, ...)."""
    port = free_port()
    env = {
        "HOST": "127.0.0.1",
        "PYTHONPATH": str(MODELS),
        "DRAIN_SECONDS": "0",
        "MODEL_DIR": str(model_dir),
        "PORT": str(port),
        # REST only here; several servers run at once and would all claim gRPC's 8081 (and
        # the probe port's 8082): the kubelet's probes are not part of this measurement.
        "GRPC_PORT": "0",
        "PROBE_PORT": "0",
        **env,
    }
    # SIGINT: stop without the drain wait.
    return ServerSpec(
        name,
        [sys.executable, "-m", "serving"],
        "/v2/health/ready",
        env,
        MODELS,
        port,
        signal.SIGINT,
    )


def server_specs(
    models: dict[str, Path], mls_dir: Path, mlserver: Path, fastapi_tf: Path
) -> dict[str, ServerSpec]:
    """Every server of the run, on fresh ports."""
    py = sys.executable

    mls_port, hello_port, tf_port = free_port(), free_port(), free_port()
    mls_settings = {
        "http_port": mls_port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 1,
    }
    (mls_dir / "settings.json").write_text(json.dumps(mls_settings))
    specs = [
        our_server("ours-ml_model_1", models["ml_model_1"]),
        our_server("ours-ml_model_2", models["ml_model_2"]),
        our_server("ours-native-inline", models["ml_model_1"], INFERENCE_BACKEND="native"),
        our_server(
            "ours-native-batched",
            models["ml_model_1"],
            INFERENCE_BACKEND="native",
            MAX_BATCH_SIZE="32",
        ),
        ServerSpec(
            "mlserver",
            [str(mlserver / "bin" / "mlserver"), "start", str(mls_dir)],
            "/v2/models/ml_model_1/ready",
            {},
            mls_dir,
            mls_port,
        ),
        ServerSpec(
            "starlette-hello",
            [py, "-m", "uvicorn", "hello_starlette:app", "--port", str(hello_port), *UVICORN_FAST],
            "/ready",
            {},
            PEERS,
            hello_port,
        ),
        ServerSpec(
            "fastapi-tf-predict",
            [str(fastapi_tf / "bin" / "python"), "-m", "uvicorn", "fastapi_tf_server:app"]
            + ["--port", str(tf_port), *UVICORN_FAST],
            "/health",
            {"MODEL_PATH": str(models["ml_model_2"] / "model.keras")},
            PEERS,
            tf_port,
        ),
    ]
    return {spec.name: spec for spec in specs}


def evaluate(medians: dict, cold_start: dict, docker: dict | None) -> list[dict]:
    """The issue's targets as pass/fail rows."""

    def rps(scenario: str, ours: str, peer: str) -> float:
        return ratio(medians[scenario][ours]["rps"], medians[scenario][peer]["rps"])

    def p99(scenario: str, ours: str, peer: str) -> float:
        return ratio(medians[scenario][ours]["p99_ms"], medians[scenario][peer]["p99_ms"])

    f1, f100 = "forest-1row (OIP /infer)", "forest-100row (OIP /infer)"
    start = {name: c["median"] for name, c in cold_start.items()}
    checks = [
        ("forest_1row_rps_vs_mlserver", rps(f1, "ours-ml_model_1", "mlserver"), ">="),
        ("forest_1row_p99_ours_over_mlserver", p99(f1, "ours-ml_model_1", "mlserver"), "<1"),
        ("forest_100row_rps_vs_mlserver", rps(f100, "ours-ml_model_1", "mlserver"), ">="),
        ("forest_100row_p99_ours_over_mlserver", p99(f100, "ours-ml_model_1", "mlserver"), "<1"),
        (
            "overhead_rps_vs_hello",
            rps("overhead (1 row /predict vs hello GET)", "ours-ml_model_1", "starlette-hello"),
            ">=",
        ),
        (
            "tf_rps_vs_fastapi_predict",
            rps("tf-1row (/predict)", "ours-ml_model_2", "fastapi-tf-predict"),
            ">=",
        ),
        (
            "native_micro_batching_rps_gain",
            rps(
                "native-forest-1row (/predict, scikit-learn)",
                "ours-native-batched",
                "ours-native-inline",
            ),
            ">=",
        ),
        ("cold_start_seconds_max", max(start["ours-ml_model_1"], start["ours-ml_model_2"]), "<="),
        (
            "tf_start_speedup_vs_fastapi_tf",
            ratio(start["fastapi-tf-predict"], start["ours-ml_model_2"]),
            ">=",
        ),
    ]
    if docker:
        sizes = docker["image_bytes"]
        checks.append(("ml_model_1_image_gb_max", sizes["ml_model_1"] / 1e9, "<="))
        tf_ratio = ratio(sizes["ml_model_2_train_tensorflow"], sizes["ml_model_2"])
        checks.append(("tf_image_size_vs_runtime", tf_ratio, ">="))
    rows = []
    for name, value, op in checks:
        target = TARGETS.get(name, 1.0)
        met = value >= target if op == ">=" else value <= target if op == "<=" else value < 1.0
        shown = f"< {target}" if op == "<1" else f"{op} {target}"
        rows.append({"name": name, "value": value, "target": shown, "met": met})
    return rows


# ------------------------------------------------------------------------------ report


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def write_report(results: dict) -> Path:
    """Write serving.{json,md} (serving-quick.* for --quick, so smoke runs keep the real ones)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "serving-quick" if results["config"]["quick"] else "serving"
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    machine, config = results["machine"], results["config"]
    lines = [
        "# Serving benchmark",
        "",
        f"Run {results['started']} on {machine['cpu']} ({machine['cpus']} CPUs), servers pinned "
        f"to CPU {SERVER_CPU}, wrk to CPU {LOAD_CPU}, {CONNECTIONS} connections, "
        f"{config['rounds']} alternating rounds of {config['seconds']} s, medians. Load average "
        f"before/after: {machine['loadavg_before']} / {machine['loadavg_after']} (other work on "
        "the machine shows up here; compare ratios, not absolute numbers).",
        "",
        "| scenario | server | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for scenario, servers in results["scenarios"].items():
        for name, m in servers.items():
            cells = [scenario, name, f"{m['rps']:.0f}", f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}"]
            lines.append("| " + " | ".join([*cells, str(m["errors"])]) + " |")
    lines += ["", "| check | measured | target | met |", "|---|---:|---:|---|"]
    for check in results["checks"]:
        met = "yes" if check["met"] else "NO"
        lines.append(f"| {check['name']} | {check['value']:.3g} | {check['target']} | {met} |")
    lines += ["", "Cold start, process start -> ready (median seconds):", ""]
    for name, c in results["cold_start_seconds"].items():
        runs = ", ".join(f"{r:.2f}" for r in c["runs"])
        lines.append(f"- {name}: {c['median']:.2f} (runs: {runs})")
    if results.get("docker"):
        d = results["docker"]
        lines += ["", "Images (docker image inspect Size):", ""]
        lines += [f"- {k}: {v / 1e6:.0f} MB" for k, v in d["image_bytes"].items()]
        start = d["container_start_to_ready_seconds"]["median"]
        lines.append(f"- container start -> ready (ml_model_1): {start:.2f} s")
    lines += ["", "Model cost per call, this process:", ""]
    lines += [f"- {k}: {v:.4f}" for k, v in results["model_costs"].items()]
    report = RESULTS / f"{stem}.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 s runs, no Docker: a smoke run")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median taken)")
    parser.add_argument("--skip-docker", action="store_true", help="skip image builds and sizes")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.skip_docker = 3.0, True
    if (os.cpu_count() or 1) < 2 or not shutil.which("wrk") or not shutil.which("taskset"):
        print(
            "bench_serving needs 2+ CPUs, wrk and taskset (apt-get install wrk util-linux)",
            file=sys.stderr,
        )
        return 2
    os.sched_setaffinity(0, {LOAD_CPU})  # this script polls and parses on the load generator's CPU

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    loadavg_before = [round(x, 2) for x in os.getloadavg()]
    models = trained_models()
    mlserver = peer_venv("mlserver")
    fastapi_tf = peer_venv("fastapi-tf")
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    bodies = payloads(work)

    mls_dir = mlserver_model_dir(work, models["ml_model_1"])
    log_dir = CACHE / "bench" / "logs"  # server logs: large (MLServer logs every request)
    log_dir.mkdir(parents=True, exist_ok=True)

    def specs() -> dict[str, ServerSpec]:
        return server_specs(models, mls_dir, mlserver, fastapi_tf)

    # Cold starts: each server alone, several times.
    cold: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, spec in specs().items():
            server = Running(spec, log_dir)
            cold.setdefault(name, []).append(server.start_seconds)
            server.stop()
    log("cold starts: " + ", ".join(f"{k} {statistics.median(v):.2f}s" for k, v in cold.items()))

    running: dict[str, Running] = {}
    runs: dict[str, dict[str, list[dict]]] = {s: {} for s in SCENARIOS}
    try:
        for name, spec in specs().items():  # in the try: a failed start stops those before it
            running[name] = Running(spec, log_dir)
        for scenario, entries in SCENARIOS.items():
            for name, path, body in entries:  # warm-up
                wrk(running[name].spec.port, path, bodies.get(body), 1)
            for r in range(args.rounds):
                for name, path, body in entries:
                    result = wrk(running[name].spec.port, path, bodies.get(body), args.seconds)
                    runs[scenario].setdefault(name, []).append(result)
                    log(f"{scenario} round {r + 1}: {name} {result['rps']:.0f} req/s")
    finally:
        for server in running.values():
            server.stop()

    medians = {s: {n: median_of(r) for n, r in servers.items()} for s, servers in runs.items()}
    cold_start = {k: {"median": statistics.median(v), "runs": v} for k, v in cold.items()}
    docker = None
    if not args.skip_docker:
        cli = docker_cli()
        if cli is None:
            log("no usable docker client: image sizes skipped")
        else:
            docker = docker_measurements(cli, args.rounds)
    check_rows = evaluate(medians, cold_start, docker)

    results = {
        "started": started,
        "config": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "connections": CONNECTIONS,
            "quick": args.quick,
        },
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": loadavg_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "scenarios": medians,
        "cold_start_seconds": cold_start,
        "docker": docker,
        "model_costs": model_costs(models),
        "checks": check_rows,
    }
    report = write_report(results)
    shutil.rmtree(work, ignore_errors=True)
    log(f"results: {report}")
    print(report.read_text())
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
