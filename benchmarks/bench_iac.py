"""IaC scaling curve: `pulumi preview` and `pulumi up` wall time for 10, 50 and 100 generated
models against the local cluster, resources per second, and how time grows with size.

The peer, measured in the same run on the same cluster, is `kubectl apply --server-side` of the
very objects Pulumi created (read back from the stack's state): the floor for getting those
objects into the API server, so the ratio shows what the engine adds on top.

Run: `make bench` (all benchmarks) or `.venv/bin/python benchmarks/bench_iac.py [--sizes 10,50]`.
Needs `make bootstrap`. It runs on a cluster of its own, `mlplatform-bench`, with simulated nodes
only (hundreds of pods of a prebuilt image that no real node could pull), made and deleted here.
Results: benchmarks/results/iac.json and iac.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
# A prebuilt image reference: the scaling curve measures the engine and the API server, not
# Docker builds (which are content-addressed and cached anyway).
IMAGE = "mlplatform/bench-model:0.0.1"


CLUSTER = {"MLP_CLUSTER": "mlplatform-bench", "MLP_REAL_NODES": "0", "KUBECONFIG": ""}


def tool_env() -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", f"source {REPO}/scripts/env.sh && env -0"],
        check=True,
        capture_output=True,
        env={**os.environ, **CLUSTER},
    ).stdout
    return dict(i.split("=", 1) for i in out.decode().split("\0") if "=" in i)


def cluster(action: str, env: dict[str, str]) -> None:
    subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), action], env=env, check=True)


def stack_config(n: int, namespace: str) -> dict:
    models = [
        {
            "name": f"bench-{i:03d}",
            "framework": "sklearn",
            "version": "v1",
            "image": IMAGE,
            "resources": {
                "requests": {"cpu": "10m", "memory": "32Mi"},
                "limits": {"cpu": "100m", "memory": "64Mi"},
            },
        }
        for i in range(n)
    ]
    return {
        "config": {
            "mlplatform:namespaces": {"models": namespace},
            "mlplatform:autoscaling": {"minReplicas": 1, "maxReplicas": 2},
            "mlplatform:models": models,
            "mlplatform:ingress": {"enabled": False},
            "mlplatform:monitoring": {"enabled": False},
        }
    }


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def measure(n: int, env: dict[str, str], work: Path, parallel: int | None = None) -> dict:
    proj = work / f"n{n}"
    shutil.copytree(
        REPO,
        proj,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".pulumi-state",
            "__pycache__",
            "results",
            "models",
            "tests",
            "benchmarks",
        ),
    )
    (proj / ".venv").symlink_to((REPO / ".venv").resolve())
    stack = f"bench{n}"
    namespace = f"bench-iac-{n}"
    (proj / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(stack_config(n, namespace)))
    pulumi = [env["MLP_CACHE"] + "/bin/pulumi", "--non-interactive", "--stack", stack]
    run(pulumi[:2] + ["stack", "init", stack], proj, env)
    par = ["--parallel", str(parallel)] if parallel else []
    preview = run(pulumi + ["preview", *par], proj, env)
    up = run(pulumi + ["up", "--yes", "--skip-preview", *par], proj, env)
    state = json.loads(
        subprocess.run(
            pulumi + ["stack", "export"],
            cwd=proj,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    k8s_objects = [
        r
        for r in state["deployment"]["resources"]
        if r["type"].startswith("kubernetes:") and not r["type"].startswith("pulumi:providers")
    ]
    destroy = run(pulumi + ["destroy", "--yes", *par], proj, env)

    # Peer: the same objects applied by kubectl, server-side, in one call.
    manifests = []
    for r in k8s_objects:
        # What Pulumi sent (its inputs), without the provider's bookkeeping keys.
        obj = {k: v for k, v in r["inputs"].items() if not k.startswith("__")}
        meta = obj.get("metadata", {})
        obj["metadata"] = {
            k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta
        }
        obj["metadata"].get("annotations", {}).pop("pulumi.com/patchForce", None)
        manifests.append(obj)
    manifest_file = proj / "peer.yaml"
    # Namespaces first so namespaced objects have a home.
    manifests.sort(key=lambda o: o.get("kind") != "Namespace")
    manifest_file.write_text(yaml.safe_dump_all(manifests))
    kubectl = [env["MLP_CACHE"] + "/bin/kubectl"]
    peer = run(
        kubectl + ["apply", "--server-side", "--force-conflicts", "-f", str(manifest_file)],
        proj,
        env,
    )
    run(
        kubectl + ["delete", "--wait=false", "--ignore-not-found", "-f", str(manifest_file)],
        proj,
        env,
    )
    return {
        "models": n,
        "resources": len(k8s_objects),
        "preview_s": round(preview, 2),
        "up_s": round(up, 2),
        "destroy_s": round(destroy, 2),
        "kubectl_apply_s": round(peer, 2),
        "up_resources_per_s": round(len(k8s_objects) / up, 1),
        "up_vs_kubectl_apply": round(up / peer, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,50,100")
    ap.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="pulumi --parallel (default: Pulumi's own); results go to iac-parallel-N.*",
    )
    args = ap.parse_args()
    env = tool_env()
    env.update(PULUMI_CONFIG_PASSPHRASE="bench")
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
    rows = []
    cluster("up", env)
    with tempfile.TemporaryDirectory(prefix="bench-iac-") as tmp:
        work = Path(tmp)
        (work / "state").mkdir()
        env["PULUMI_BACKEND_URL"] = f"file://{work / 'state'}"
        for n in (int(s) for s in args.sizes.split(",")):
            print(f"[bench_iac] {n} models ...", flush=True)
            rows.append(measure(n, env, work, args.parallel))
            print(f"[bench_iac] {rows[-1]}", flush=True)
    cluster("down", env)
    base = rows[0]
    for r in rows:
        # Growth relative to the smallest size, per model: 1.0 means linear.
        r["up_growth_per_model_vs_smallest"] = round(
            (r["up_s"] / r["models"]) / (base["up_s"] / base["models"]), 2
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"iac-parallel-{args.parallel}" if args.parallel else "iac"
    meta = {
        "machine": f"{os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "parallel": args.parallel,
        "rows": rows,
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(meta, indent=2))
    lines = [
        "| models | k8s objects | preview s | up s | destroy s | kubectl apply s (peer) "
        "| up / peer | objects/s (up) | up per model vs smallest |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['models']} | {r['resources']} | {r['preview_s']} | {r['up_s']} | {r['destroy_s']} | "
        f"{r['kubectl_apply_s']} | {r['up_vs_kubectl_apply']}× | {r['up_resources_per_s']} | "
        f"{r['up_growth_per_model_vs_smallest']} |"
        for r in rows
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
