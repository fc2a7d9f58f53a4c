"""A real `pulumi preview --policy-pack policy` of the dev stack against the local cluster: the
pack passes the stack as configured and rejects a deliberately broken copy with the rule's message.

Each case runs in a throwaway copy of the project with a file backend, so no state or config of
the checkout is touched. Needs `make bootstrap` (pulumi, plugins, both Python environments) and
the local cluster (KUBECONFIG).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import copy_project, drop_encryption_salt

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STACK = "dev"
# Not secret: it only encrypts the throwaway stack's config in a temp dir.
TEST_PASSPHRASE = "policy-preview-test"


def toolchain_env() -> dict[str, str]:
    """The environment `scripts/env.sh` sets up (PATH with pulumi, PULUMI_HOME with plugins)."""
    env_sh = REPO / "scripts" / "env.sh"
    if not env_sh.is_file():
        pytest.fail(f"{env_sh} is missing: run `make bootstrap` to build the toolchain first")
    out = subprocess.run(
        ["bash", "-c", f'source "{env_sh}" >/dev/null 2>&1 && env -0'],
        capture_output=True,
        check=True,
        cwd=REPO,
    ).stdout.decode()
    env = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    if shutil.which("pulumi", path=env.get("PATH")) is None:
        pytest.fail("pulumi is not on PATH after sourcing scripts/env.sh: run `make bootstrap`")
    for venv in (REPO / ".venv", REPO / "policy" / ".venv"):
        if not (venv / "bin" / "python").exists():
            pytest.fail(f"{venv} is missing: run `make bootstrap` (step venv builds both)")
    kubeconfig = os.environ.get("KUBECONFIG") or env.get("KUBECONFIG")
    if not kubeconfig or not all(Path(p).is_file() for p in kubeconfig.split(os.pathsep)):
        pytest.fail(
            f"KUBECONFIG={kubeconfig!r} does not name the local cluster's kubeconfig: start the "
            "cluster (see README) and export KUBECONFIG"
        )
    env["KUBECONFIG"] = kubeconfig
    return env


def project_copy(dest: Path) -> Path:
    for required in ("Pulumi.yaml", f"Pulumi.{STACK}.yaml", "__main__.py"):
        if not (REPO / required).is_file():
            pytest.fail(f"{REPO / required} is missing: the stack program is not in the checkout")
    return copy_project(dest)


def prepare_stack_file(path: Path, env: dict[str, str]) -> None:
    """Lets the copy's stack config be decrypted: a file with secrets needs the passphrase the
    project's env.sh provides; any other works with a test passphrase."""
    has_secrets = drop_encryption_salt(path)
    if env.get("PULUMI_CONFIG_PASSPHRASE") or env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return
    if has_secrets:
        pytest.fail(f"{path.name} holds secrets: export its PULUMI_CONFIG_PASSPHRASE")
    env["PULUMI_CONFIG_PASSPHRASE"] = TEST_PASSPHRASE


def preview(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    state = project.parent / f"{project.name}-state"
    state.mkdir()
    env = dict(env, PULUMI_BACKEND_URL=f"file://{state}", PULUMI_SKIP_UPDATE_CHECK="true")
    prepare_stack_file(project / f"Pulumi.{STACK}.yaml", env)
    init = subprocess.run(
        ["pulumi", "stack", "init", STACK, "--non-interactive"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, f"pulumi stack init failed:\n{init.stdout}\n{init.stderr}"
    return subprocess.run(
        [
            "pulumi",
            "preview",
            "--stack",
            STACK,
            "--policy-pack",
            "policy",
            "--non-interactive",
            "--color",
            "never",
            "--suppress-progress",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def break_first_model_image(stack_file: Path) -> str:
    """Points the first model at a prebuilt image with the mutable tag `:latest`; the stack's own
    config validation accepts any image reference, only the policy pack refuses mutable tags."""
    doc = yaml.safe_load(stack_file.read_text())
    models = doc.get("config", {}).get("mlplatform:models")
    if not models:
        pytest.fail(f"{stack_file.name} has no mlplatform:models to break")
    models[0]["image"] = f"registry.local/mlplatform/{models[0]['name']}:latest"
    stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return models[0]["name"]


def report(result: subprocess.CompletedProcess) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n"
        f"--- stderr\n{result.stderr[-3000:]}"
    )


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return toolchain_env()


def test_dev_stack_as_configured_passes_the_policy_pack(env, tmp_path):
    result = preview(project_copy(tmp_path / "project"), env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, report(result)
    assert "mlplatform@v0.1.0" in out, report(result)
    assert "[mandatory]" not in out, report(result)


def test_mutable_image_tag_in_stack_config_is_rejected_with_the_rule_message(env, tmp_path):
    project = project_copy(tmp_path / "project")
    model = break_first_model_image(project / f"Pulumi.{STACK}.yaml")
    result = preview(project, env)
    out = result.stdout + result.stderr
    assert result.returncode != 0, report(result)
    # The engine lists each violation as "- [mandatory] [severity: high]  <rule>  (<type>: <name>)".
    assert re.search(r"\[mandatory\].*\bimmutable-image-tags\b", out), report(result)
    assert (
        f"uses the mutable tag ':latest' in image 'registry.local/mlplatform/{model}:latest'" in out
    ), report(result)
