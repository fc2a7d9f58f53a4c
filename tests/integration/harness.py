"""Shared helpers of the integration tier: bootstrapped tool paths, the Pulumi CLI runner, polling."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MLP_CACHE", Path.home() / ".cache" / "mlplatform"))
BIN = CACHE / "bin"


def tool(name: str) -> str:
    """Path of a bootstrapped tool, or a failure that says how to get it."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} not found in {BIN}: run `make bootstrap` first", pytrace=False)
    return str(path)


class Pulumi:
    """The real Pulumi CLI on one project directory and file backend."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.cwd, self.env, self.exe = cwd, env, tool("pulumi")

    def __call__(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [self.exe, *args, "--non-interactive"], cwd=self.cwd, env=self.env,
            capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc


def wait_for(what: str, check, timeout: float = 120, interval: float = 1.0):
    """Poll check() until it returns a truthy value; fail naming `what` and the last value."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}", pytrace=False)
