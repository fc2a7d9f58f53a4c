"""Time from `pulumi up --stack dev` to the first prediction answered in the cluster, with cold and
with warm image caches, on a cluster of its own (`mlplatform-dpbench`, three real nodes).

- cold: a new cluster (empty registry, nodes that have pulled nothing) and no model image in the
  Docker build cache, so `up` trains and converts both models, builds, pushes and the kubelets
  pull — what a new machine or a new model version costs;
- warm: `destroy`, then `up` again on the same cluster: images are built (cache hits), already in
  the registry and on the nodes — what an ordinary config change costs.

The first prediction is a POST /predict to ml-model-1's Service through a port-forward on
127.0.0.1, polled every 0.5 s from the moment `up` starts (bounded: 30 min). There is no outside
peer for this number; the warm/cold ratio is reported.

Run: `make bench` or `.venv/bin/python benchmarks/bench_dataplane.py`. Needs `make bootstrap`.
Results: benchmarks/results/dataplane.json and dataplane.md.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CLUSTER = {"MLP_CLUSTER": "mlplatform-dpbench", "KUBECONFIG": ""}
ROW = [
    17.99,
    10.38,
    122.8,
    1001.0,
    0.1184,
    0.2776,
    0.3001,
    0.1471,
    0.2419,
    0.07871,
    1.095,
    0.9053,
    8.589,
    153.4,
    0.006399,
    0.04904,
    0.05373,
    0.01587,
    0.03003,
    0.006193,
    25.38,
    17.33,
    184.6,
    2019.0,
    0.1622,
    0.6656,
    0.7119,
    0.2654,
    0.4601,
    0.1189,
]  # breast-cancer row 0


def tool_env() -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", f"source {REPO}/scripts/env.sh && env -0"],
        check=True,
        capture_output=True,
        env={**os.environ, **CLUSTER},
    ).stdout
    return dict(i.split("=", 1) for i in out.decode().split("\0") if "=" in i)


def layout(env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster.sh"), "env"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_prediction(env: dict[str, str], started: float, deadline_s: float = 1800) -> float:
    """Seconds from `started` until ml-model-1 answers /predict through its Service."""
    kubectl = env["MLP_CACHE"] + "/bin/kubectl"
    while time.monotonic() - started < deadline_s:
        port = free_port()
        pf = subprocess.Popen(
            [
                kubectl,
                "port-forward",
                "-n",
                "ml-models",
                "--address",
                "127.0.0.1",
                "svc/ml-model-1",
                f"{port}:8080",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(6):
                try:
                    resp = httpx.post(
                        f"http://127.0.0.1:{port}/predict", json={"instances": [ROW]}, timeout=2
                    )
                    if resp.status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        finally:
            pf.terminate()
            pf.wait()
    raise SystemExit(f"no prediction within {deadline_s}s")


def measure(label: str, proj: Path, env: dict[str, str]) -> dict:
    pulumi = [env["MLP_CACHE"] + "/bin/pulumi", "--non-interactive", "--stack", "dev"]
    started = time.monotonic()
    up = subprocess.Popen(
        pulumi + ["up", "--yes", "--skip-preview", "--parallel", "64"],
        cwd=proj,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = first_prediction(env, started)
    out = up.communicate()[0]
    if up.returncode != 0:
        raise SystemExit(f"pulumi up ({label}) failed:\n{out[-3000:]}")
    row = {
        "caches": label,
        "first_prediction_s": round(first, 1),
        "up_s": round(time.monotonic() - started, 1),
    }
    print(f"[bench_dataplane] {row}", flush=True)
    return row


def main() -> None:
    env = tool_env()
    cluster = ["bash", str(REPO / "scripts" / "cluster.sh")]
    subprocess.run(cluster + ["recreate"], env=env, check=True)
    registry = layout(env)["REGISTRY"]
    # Cold: no model image in Docker either — neither the images (their layers would serve as
    # cache) nor the build cache — so both models are trained and converted again.
    images = subprocess.run(
        ["docker", "image", "ls", "-q", "--filter", "label=mlplatform.io/model"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if images:
        subprocess.run(
            ["docker", "image", "rm", "--force", *sorted(set(images))],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        ["docker", "builder", "prune", "--all", "--force"], check=True, capture_output=True
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dataplane-") as tmp:
        proj = Path(tmp) / "project"
        shutil.copytree(
            REPO,
            proj,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", ".pulumi-state", "__pycache__", "results", "tests", "benchmarks"
            ),
            symlinks=True,
        )
        for venv in (".venv", "policy/.venv"):
            (proj / venv).unlink(missing_ok=True)
            (proj / venv).symlink_to((REPO / venv).resolve())
        stack_file = proj / "Pulumi.dev.yaml"
        doc = yaml.safe_load(stack_file.read_text())
        doc.pop("encryptionsalt", None)
        doc["config"]["mlplatform:registry"] = {"server": registry}
        monitoring = doc["config"]["mlplatform:monitoring"]
        monitoring["prometheusImage"] = monitoring["prometheusImage"].replace(
            "localhost:5001", registry
        )
        stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        (Path(tmp) / "state").mkdir()
        env = dict(env, PULUMI_BACKEND_URL=f"file://{tmp}/state", PULUMI_CONFIG_PASSPHRASE="bench")
        env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        subprocess.run(
            [env["MLP_CACHE"] + "/bin/pulumi", "--non-interactive", "stack", "init", "dev"],
            cwd=proj,
            env=env,
            check=True,
            capture_output=True,
        )
        rows.append(measure("cold", proj, env))
        subprocess.run(
            [
                env["MLP_CACHE"] + "/bin/pulumi",
                "--non-interactive",
                "--stack",
                "dev",
                "destroy",
                "--yes",
                "--parallel",
                "64",
            ],
            cwd=proj,
            env=env,
            check=True,
            capture_output=True,
        )
        rows.append(measure("warm", proj, env))
        subprocess.run(
            [
                env["MLP_CACHE"] + "/bin/pulumi",
                "--non-interactive",
                "--stack",
                "dev",
                "destroy",
                "--yes",
                "--parallel",
                "64",
            ],
            cwd=proj,
            env=env,
            check=True,
            capture_output=True,
        )
    subprocess.run(cluster + ["down"], env=env, check=True)
    cold, warm = rows
    ratio = round(cold["first_prediction_s"] / warm["first_prediction_s"], 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": f"{os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "cold_over_warm": ratio,
    }
    (RESULTS / "dataplane.json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = [
        "| image caches | `pulumi up` → first prediction in the cluster | `pulumi up` done |",
        "|---|---|---|",
    ]
    lines += [f"| {r['caches']} | {r['first_prediction_s']} s | {r['up_s']} s |" for r in rows]
    lines += [
        "",
        f"Cold takes {ratio}× as long as warm ({meta['machine']}, {meta['date']}; dev stack: "
        "2 models, 3 model Deployments + canary, Prometheus, batch Job).",
    ]
    (RESULTS / "dataplane.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
