"""Fixtures for the integration tier: the real Pulumi engine, the local cluster, real tools.

Nothing here is mocked. A missing tool fails the test with the command that provides it: the
integration tier never skips itself into green.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO, Pulumi, tool


@pytest.fixture(scope="session")
def tool_env() -> dict[str, str]:
    """Environment with the bootstrapped tools and offline Pulumi settings (as scripts/env.sh)."""
    out = subprocess.run(
        ["bash", "-c", f"source {REPO}/scripts/env.sh && env -0"],
        check=True,
        capture_output=True,
    ).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return env


@pytest.fixture(scope="session")
def kubectl(tool_env):
    """Run kubectl against the local cluster; returns stdout (JSON parsed with as_json=True)."""
    exe = tool("kubectl")
    if not Path(tool_env["KUBECONFIG"]).exists():
        pytest.fail(
            f"no cluster kubeconfig at {tool_env['KUBECONFIG']}: run `make cluster-up`",
            pytrace=False,
        )

    def run(*args: str, as_json: bool = False, check: bool = True, input: str | None = None):
        cmd = [exe, *args] + (["-o", "json"] if as_json else [])
        proc = subprocess.run(cmd, env=tool_env, capture_output=True, text=True, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return json.loads(proc.stdout) if as_json and proc.returncode == 0 else proc

    return run


@pytest.fixture
def pulumi_project(tmp_path, tool_env):
    """Factory: a Pulumi project dir in tmp with its own file backend; returns a Pulumi runner."""

    def make(src: Path | None = None, files: dict[str, str] | None = None) -> Pulumi:
        proj = tmp_path / "project"
        if src is not None:
            shutil.copytree(
                src, proj, ignore=shutil.ignore_patterns(".venv", ".pulumi-state", "__pycache__")
            )
        proj.mkdir(exist_ok=True)
        for name, text in (files or {}).items():
            (proj / name).write_text(text)
        # The project's runtime uses the repo's environment (Pulumi.yaml: virtualenv .venv).
        if not (proj / ".venv").exists():
            (proj / ".venv").symlink_to((REPO / ".venv").resolve())
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        env = dict(
            tool_env,
            PULUMI_BACKEND_URL=f"file://{state}",
            PULUMI_CONFIG_PASSPHRASE="integration-test",
        )
        env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        return Pulumi(proj, env)

    return make
