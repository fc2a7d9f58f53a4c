"""What the in-flight autoscaling signal reads at the pod, inline and micro-batched, as load grows.

    .venv/bin/python benchmarks/bench_inflight.py [--quick]

The pods' `inFlight` trigger (docs/autoscaling.md) reads the rate of
`model_infer_request_duration_seconds_sum`: seconds spent in requests per second, the mean
number of requests in flight by Little's law. Its target only means something next to what the
reading does as a pod fills up. This measures it on the real server: ml_model_1 (ONNX Runtime)
pinned to CPU 0, inline (MAX_BATCH_SIZE=1, the default) and merged (MAX_BATCH_SIZE=1024) side by
side; wrk on CPU 1 with 16 connections, each pausing a random (exponential) think time before
every request, so that below saturation the arrivals are roughly Poisson; the last level sends
back to back (saturation). Per level: req/s, the server's busy share (its CPU seconds per
second: 1.0 is the whole core), the reading (the duration sum's increase over the run, per
second, read from the server's own /metrics) and the client's p50/p99.

Results: benchmarks/results/inflight.{json,md,png} (inflight-quick.* for --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from bench_serving import (
    LOAD_CPU,
    MODELS,
    RESULTS,
    Running,
    ServerSpec,
    _cpu_model,
    free_port,
    log,
    peer_venv,
    trained_models,
    wrk,
)

MODES = {"inline": "1", "batched": "1024"}
"""Server configuration -> MAX_BATCH_SIZE."""
ROWS = (1, 100)
THINK_MS = (80, 40, 20, 10, 5, 2, 0)
"""Mean think time per connection, ms, one load level each; 0 = back to back."""
PATH = "/v2/models/ml_model_1/infer"
_SUM = re.compile(rb"^model_infer_request_duration_seconds_(sum|count)\{[^}]*\} (\S+)$", re.M)


def duration_totals(port: int) -> tuple[float, float]:
    """(seconds spent in requests, requests) so far, from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        found = {kind: float(value) for kind, value in _SUM.findall(response.read())}
    return found[b"sum"], found[b"count"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def body_file(work: Path, rows: int) -> Path:
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:rows].astype(np.float32)
    tensor = {"name": "input-0", "shape": list(x.shape), "datatype": "FP32"}
    path = work / f"{rows}row.json"
    path.write_text(json.dumps({"inputs": [{**tensor, "data": x.ravel().tolist()}]}))
    return path


def level(server: Running, body: Path, think_ms: float, seconds: float) -> dict:
    port = server.spec.port
    wrk(port, PATH, body, 1, think_ms=think_ms)  # warm-up, not counted
    spent0, count0 = duration_totals(port)
    cpu0, t0 = cpu_seconds(server.process.pid), time.monotonic()
    load = wrk(port, PATH, body, seconds, think_ms=think_ms)
    elapsed = time.monotonic() - t0
    spent1, count1 = duration_totals(port)
    busy = (cpu_seconds(server.process.pid) - cpu0) / elapsed
    reading = (spent1 - spent0) / elapsed
    return {
        "think_ms": think_ms,
        "rps": round((count1 - count0) / elapsed),
        "busy": round(busy, 3),
        "in_flight": round(reading, 3),
        "in_flight_per_busy": round(reading / busy, 2) if busy > 0 else None,
        "server_ms": round(1000 * (spent1 - spent0) / max(1.0, count1 - count0), 3),
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "errors": load["non_2xx"] + load["socket_errors"],
    }


def measure(seconds: float, model_dir: Path, work: Path) -> list[dict]:
    servers = {}
    try:
        for mode, batch in MODES.items():
            port = free_port()
            env = {
                "HOST": "127.0.0.1",
                "PYTHONPATH": str(MODELS),
                "MODEL_DIR": str(model_dir),
                "PORT": str(port),
                "GRPC_PORT": "0",
                "PROBE_PORT": str(free_port()),
                "DRAIN_SECONDS": "0",
                "MAX_BATCH_SIZE": batch,
            }
            spec = ServerSpec(mode, [sys.executable, "-m", "serving"], "/v2/health/ready", env,
                              MODELS, port, 2)  # fmt: skip
            servers[mode] = Running(spec, work)
        out = []
        for rows in ROWS:
            body = body_file(work, rows)
            for think in THINK_MS:
                for mode, server in servers.items():  # alternated: same machine state
                    row = {"rows": rows, "mode": mode} | level(server, body, think, seconds)
                    log(json.dumps(row))
                    out.append(row)
        return out
    finally:
        for server in servers.values():
            server.stop()


def write_report(report: dict, stem: str) -> Path:
    lines = [
        "# The in-flight signal at the pod: inline vs micro-batched",
        "",
        f"Run {report['started']} on {report['machine']['cpu']} ({report['machine']['cpus']} "
        f"CPUs). ml_model_1 (ONNX Runtime) on CPU 0; wrk on CPU 1, 16 connections with an "
        f"exponential think time of the given mean before each request (0: back to back), "
        f"{report['config']['seconds']:g} s per level. Generated by "
        "`benchmarks/bench_inflight.py` (`make bench`).",
        "",
        "inline: MAX_BATCH_SIZE=1 (the default); batched: MAX_BATCH_SIZE=1024. "
        "busy: the server's CPU seconds per second (1.0 = the whole core). in-flight: what the "
        "pods' `inFlight` trigger reads, the rate of `model_infer_request_duration_seconds_sum` "
        "(seconds spent in requests per second). server ms: that time per request.",
        "",
        "| rows | mode | think ms | req/s | busy | in-flight | in-flight / busy | server ms "
        "| p50 ms | p99 ms | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["levels"]:
        lines.append(
            f"| {r['rows']} | {r['mode']} | {r['think_ms']:g} | {r['rps']} | {r['busy']:.2f} "
            f"| {r['in_flight']:.2f} | {r['in_flight_per_busy']} | {r['server_ms']:.3f} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |"
        )
    lines += ["", f"![in-flight reading against busy share]({stem}.png)", ""]
    path = RESULTS / f"{stem}.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s per level: a smoke run")
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of one load level")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 2.0
    os.sched_setaffinity(0, {LOAD_CPU})
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    model_dir = trained_models()["ml_model_1"]
    with tempfile.TemporaryDirectory(prefix="bench-inflight-") as work:
        levels = measure(args.seconds, model_dir, Path(work))
    report = {
        "started": started,
        "config": vars(args),
        "machine": {"cpu": _cpu_model(), "cpus": os.cpu_count()},
        "levels": levels,
    }
    stem = "inflight-quick" if args.quick else "inflight"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    path = write_report(report, stem)
    python = peer_venv("plot") / "bin" / "python"
    script = Path(__file__).with_name("plot_inflight.py")
    subprocess.run(
        [str(python), str(script), str(RESULTS / f"{stem}.json"), str(RESULTS / f"{stem}.png")],
        check=True,
    )
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
