"""The component library is its own project (components/): it installs as
`mlplatform-components` and imports as `mlplatform`, without the stack program or test helpers."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile


def test_pyproject_names_the_package(repo_root):
    project = tomllib.loads((repo_root / "components" / "pyproject.toml").read_text())["project"]
    assert project["name"] == "mlplatform-components"
    assert any(dep.startswith("pulumi-kubernetes") for dep in project["dependencies"])
    assert "project" not in tomllib.loads((repo_root / "pyproject.toml").read_text())


def test_wheel_holds_the_mlplatform_package_only(repo_root, tmp_path):
    # Build from a copy so build/ and *.egg-info never land in the working tree.
    source = tmp_path / "components"
    shutil.copytree(
        repo_root / "components", source, ignore=shutil.ignore_patterns("__pycache__", "build")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("mlplatform_components-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "mlplatform/__init__.py",
        "mlplatform/loader.py",
        "mlplatform/config/stack.py",
        "mlplatform/core/names.py",
        "mlplatform/plan/monitoring/rules.py",
        "mlplatform/model_service.py",
    ):
        assert module in names
    top_level = {name.split("/", 1)[0] for name in names if not name.startswith("mlplatform_")}
    assert top_level == {"mlplatform"}, top_level
    assert not any("factories" in name or "test" in name for name in names)
