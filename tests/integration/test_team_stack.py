"""Another team's stack uses the library the way the README says: `examples/team-stack` gets the
component library from a built wheel in its own venv, is previewed and deployed on the local
cluster, serves predictions through its Service, and tears down.

The model image is built here from models/ml_model_1 (BuildKit's cache from the model tier makes
that quick) and pushed to the cluster's registry under the team's own name, as a team's CI would.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness import REPO, cluster_layout, port_forward, run, tool, wait_for

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "team-stack"
NAMESPACE = "team-fraud"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The library's wheel, built from a copy of components/ (no build/ in the checkout)."""
    work = tmp_path_factory.mktemp("wheel")
    shutil.copytree(
        REPO / "components", work / "src", ignore=shutil.ignore_patterns("__pycache__", "build")
    )
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(work / "dist"), str(work / "src")]
    )
    (built,) = (work / "dist").glob("mlplatform_components-*.whl")
    return built


@pytest.fixture(scope="module")
def image(tool_env) -> str:
    """ml_model_1's image under the team's repository name, pushed to the cluster's registry."""
    registry = f"localhost:{cluster_layout(tool_env)['REGISTRY_PORT']}"
    ref = f"{registry}/team/fraud-scorer"
    run(
        ["docker", "build", "-q"]
        + ["--build-arg", "MODEL_SOURCE=ml_model_1", "-f", "models/ml_model_1/Dockerfile"]
        + ["-t", f"{ref}:1.4.2", "-t", f"{ref}:1.5.0-rc1", str(REPO / "models")],
        env=tool_env,
        timeout=1800,
    )
    for tag in ("1.4.2", "1.5.0-rc1"):
        run(["docker", "push", "-q", f"{ref}:{tag}"], env=tool_env)
    return f"{ref}:1.4.2"


@dataclass
class TeamStack:
    project: Path
    pulumi: Callable[..., str]


@pytest.fixture(scope="module")
def team_stack(tmp_path_factory, tool_env, wheel, image):
    """The example project in tmp with its own venv holding the wheel; destroyed at the end."""
    project = tmp_path_factory.mktemp("team") / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    venv = project / ".venv"
    run([sys.executable, "-m", "venv", str(venv)])
    # The wheel's dependencies, pinned as this repository pins them (the engine's SDK version);
    # a constraints file takes no extras, so `name[extra]==v` becomes `name==v`.
    pins = project.parent / "constraints.txt"
    pins.write_text(re.sub(r"\[[^\]]*\]", "", (REPO / "requirements.txt").read_text()))
    run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            str(wheel),
            "-c",
            str(pins),
        ],
        timeout=900,
    )
    state = project.parent / "state"
    state.mkdir()
    env = dict(tool_env, PULUMI_BACKEND_URL=f"file://{state}", PULUMI_CONFIG_PASSPHRASE="team")
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
    env.pop("PYTHONPATH", None)

    def pulumi(*args: str, timeout: float = 900) -> str:
        return run(
            [tool("pulumi"), *args, "--cwd", str(project), "--non-interactive"], env, timeout
        )

    pulumi("stack", "init", "staging")
    pulumi("config", "set", "image", image)
    yield TeamStack(project, pulumi)
    pulumi("destroy", "--yes")


@pytest.fixture(scope="module", autouse=True)
def gateway_api(tool_env, kubectl):
    """The Gateway API CRDs, as the platform stack installs them (the route needs its kind)."""
    crds = tool_env["MLP_GATEWAY_API_CRDS"]
    before = kubectl("get", "crd", "httproutes.gateway.networking.k8s.io", check=False)
    kubectl("apply", "--server-side", "-f", crds)
    yield
    if before.returncode != 0:
        kubectl("delete", "-f", crds, "--wait=false")


def test_the_example_venv_imports_the_installed_wheel_not_the_checkout(team_stack):
    python = team_stack.project / ".venv" / "bin" / "python"
    where = run([str(python), "-c", "import mlplatform; print(mlplatform.__file__)"])
    assert "site-packages" in where and str(REPO) not in where, where


def test_preview_then_up_deploys_the_team_model_and_it_answers(team_stack, tool_env, kubectl):
    preview = team_stack.pulumi("preview", "--diff")
    assert "mlplatform:k8s:MLModelService" in preview and "fraud-scorer" in preview
    team_stack.pulumi("up", "--yes", "--skip-preview")
    route = kubectl("get", "httproute", "-n", NAMESPACE, "fraud-scorer", as_json=True)
    assert route["spec"]["hostnames"] == ["fraud-scorer.fraud.example.com"]
    assert route["spec"]["parentRefs"][0]["namespace"] == "mlplatform-gateway"

    def available(name: str):
        deployment = kubectl("get", "deployment", "-n", NAMESPACE, name, as_json=True)
        status = deployment["status"]
        return status.get("availableReplicas", 0) >= deployment["spec"]["replicas"] and status

    stable = wait_for("fraud-scorer Available", lambda: available("fraud-scorer"), timeout=300)
    assert stable["availableReplicas"] >= 2  # the example's minReplicas
    wait_for("fraud-scorer-canary Available", lambda: available("fraud-scorer-canary"), 300)
    pods = kubectl(
        "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=fraud-scorer", as_json=True
    )["items"]
    running = next(p for p in pods if p["status"].get("phase") == "Running")
    manifest = json.loads(
        kubectl(
            "exec", "-n", NAMESPACE, running["metadata"]["name"], "--", "cat", "/model/model.json"
        ).stdout
    )
    sample = manifest["sample"]
    with port_forward(tool_env, NAMESPACE, "svc/fraud-scorer", 8080) as base:
        resp = httpx.post(f"{base}/predict", json={"instances": sample["inputs"]}, timeout=30)
    assert resp.status_code == 200, resp.text[:500]
    got = resp.json()["probabilities"]
    for want, have in zip(sample["probabilities"], got, strict=True):
        assert max(abs(a - b) for a, b in zip(want, have, strict=True)) <= 1e-5


def test_second_preview_has_no_changes(team_stack):
    team_stack.pulumi("preview", "--expect-no-changes")
