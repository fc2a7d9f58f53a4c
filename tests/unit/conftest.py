"""Fixtures of the unit tier: stack config files, a throwaway project tree, snapshot updating."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def stack_file_config(stack: str) -> dict[str, Any]:
    """The `config:` block of the real Pulumi.<stack>.yaml."""
    return yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def project_root(tmp_path_factory) -> Path:
    """A copy of the stack program with stand-in model folders.

    The real models/ is filled by another part of the project; the program only needs the
    Dockerfiles to exist (mocks build nothing), and fixed stand-ins keep image tags stable.
    """
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "__main__.py", root / "__main__.py")
    for folder in ("serving", "ml_model_1", "ml_model_2"):
        (root / "models" / folder).mkdir(parents=True)
        (root / "models" / folder / "Dockerfile").write_text(f"FROM scratch\n# {folder}\n")
    (root / "models" / "serving" / "server.py").write_text("# stand-in runtime\n")
    # Stand-in for the Gateway API CRDs bootstrap copies (mocks read no manifest).
    (root / "gateway-api").mkdir()
    (root / "gateway-api" / "gateway.networking.k8s.io_httproutes.yaml").write_text("# crd\n")
    # ... and for the autoscaling add-ons' CRDs and RBAC (`scripts/bootstrap.sh autoscalers`).
    for addon in ("keda", "vpa"):
        for part in ("crds", "rbac"):
            (root / addon / part).mkdir(parents=True)
            (root / addon / part / f"{part}.yaml").write_text(f"# {addon} {part}\n")
    return root


@pytest.fixture(scope="session")
def update_snapshots(request) -> bool:
    flag = request.config.getoption("--update-snapshots", default=False)
    return bool(flag) or os.environ.get("UPDATE_SNAPSHOTS") == "1"
