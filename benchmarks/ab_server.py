"""A/B of our model server, a base commit against the working tree (changes to models/serving).

Both servers serve the same trained ml_model_1 (the ONNX forest) from the same venv; only the
serving code differs (the base's models/ comes from `git archive`). Each configuration is measured
on both, alternated round by round, with the server pinned to one core and the load generator
(wrk; ghz for gRPC, 16 requests in flight over 16 connections) on the other, as in make bench.
The measure is the server's CPU time per answered request; req/s is reported beside it.

    .venv/bin/python benchmarks/ab_server.py --base HEAD~1          # ~8 min
    .venv/bin/python benchmarks/ab_server.py --base REV --quick     # a smoke run

Needs wrk and ghz (`scripts/bootstrap.sh bench_peers`). A quiet machine matters: another busy
process on the server's core shows up in every number.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_serving import CACHE, ROOT, Running, free_port, log, our_server, trained_models
from bench_serving_peers import (
    SCENARIOS,
    Payload,
    Server,
    group_cpu_seconds,
    load,
    payloads,
    request_rows,
)

BATCHED = "1024"
"""MAX_BATCH_SIZE of the batched configurations (make bench's ours-batched)."""

CONFIGURATIONS = [
    ("forest-1row-json", "1"),
    ("forest-100row-json", "1"),
    ("forest-1row-grpc", "1"),
    ("forest-100row-grpc", "1"),
    ("forest-1row-json", BATCHED),
    ("forest-100row-json", BATCHED),
]
"""(scenario of make bench's serving-peers run, MAX_BATCH_SIZE)."""

LOGS = CACHE / "bench" / "logs"


def base_tree(rev: str, work: Path) -> Path:
    """models/ of ``rev``, unpacked under ``work``."""
    out = work / "base"
    out.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "models"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out / "models"


def measure(scenario, payload: Payload, models: Path, model: Path, batch: str, seconds: float):
    """One run: a fresh server of ``models`` (a tree's models/ folder) serving the trained
    ``model``, warmed, then loaded."""
    grpc_port = free_port() if scenario.protocol == "grpc" else 0
    env = {"MAX_BATCH_SIZE": batch, "GRPC_PORT": str(grpc_port), "PYTHONPATH": str(models)}
    spec = dataclasses.replace(our_server("ab-server", model, **env), cwd=models)
    server = Server(spec, "ml_model_1", grpc_port=grpc_port or None)
    running = Running(spec, LOGS)
    try:
        load(scenario, server, payload, 2)  # warm-up
        cpu = group_cpu_seconds({running.process.pid})
        result = load(scenario, server, payload, seconds)
        cpu = group_cpu_seconds({running.process.pid}) - cpu
    finally:
        running.stop()
    errors = result["non_2xx"] + result["socket_errors"]
    if errors:
        raise SystemExit(f"{scenario.name}: {errors} failed requests; see {LOGS}/ab-server.log")
    result["cpu_us"] = cpu / max(1.0, result["rps"] * seconds) * 1e6
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare the working tree to")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of one load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (median taken)")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s: a smoke run")
    parser.add_argument("--only", default="", help="only scenarios whose name contains this")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 3.0, 1
    model = trained_models()["ml_model_1"]
    LOGS.mkdir(parents=True, exist_ok=True)
    scenarios = {s.name: s for s in SCENARIOS}
    with tempfile.TemporaryDirectory(prefix="ab-server-") as tmp:
        work = Path(tmp)
        trees = {"base": base_tree(args.base, work), "head": ROOT / "models"}
        bodies = payloads(work, request_rows())
        rows = []
        for name, batch in [c for c in CONFIGURATIONS if args.only in c[0]]:
            scenario = scenarios[name]
            payload = bodies[name, "onnx"]
            runs: dict[str, list[dict]] = {"base": [], "head": []}
            for r in range(args.rounds):
                order = ("base", "head") if r % 2 == 0 else ("head", "base")
                for which in order:
                    runs[which].append(
                        measure(scenario, payload, trees[which], model, batch, args.seconds)
                    )
            med = {
                w: {k: statistics.median(run[k] for run in rs) for k in ("cpu_us", "rps")}
                for w, rs in runs.items()
            }
            each = {w: " / ".join(f"{run['cpu_us']:.0f}" for run in rs) for w, rs in runs.items()}
            rows.append((name, batch, med, each))
            log(f"{name} MAX_BATCH_SIZE={batch}: base {each['base']} us, head {each['head']} us")
    git = ["git", "-C", str(ROOT), "rev-parse", "--short", args.base]
    rev = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    print(
        f"\nServer CPU per answered request, base {rev} vs the working tree (median of "
        f"{args.rounds} alternated runs of {args.seconds:g} s; each run in brackets)\n"
    )
    print(
        "| scenario | MAX_BATCH_SIZE | base us | head us | head / base | base req/s | head req/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, batch, med, each in rows:
        b, h = med["base"], med["head"]
        print(
            f"| {name} | {batch} | {b['cpu_us']:.0f} ({each['base']}) | {h['cpu_us']:.0f} "
            f"({each['head']}) | {h['cpu_us'] / b['cpu_us']:.2f} | {b['rps']:,.0f} | "
            f"{h['rps']:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
