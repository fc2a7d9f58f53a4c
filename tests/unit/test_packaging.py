"""The component library installs as `mlplatform-components` and imports as `components`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile


def test_pyproject_names_the_package(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "mlplatform-components"
    assert any(dep.startswith("pulumi-kubernetes") for dep in project["dependencies"])


def test_wheel_contains_the_components_and_no_stack_program(repo_root, tmp_path):
    # Build from a copy so build/ and *.egg-info never land in the working tree.
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(repo_root / "pyproject.toml", source)
    (source / "docs").mkdir()
    shutil.copy(repo_root / "docs" / "components.md", source / "docs")
    shutil.copytree(
        repo_root / "components",
        source / "components",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(repo_root / "__main__.py", source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("mlplatform_components-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "components/__init__.py",
        "components/model_service.py",
        "components/config.py",
        "components/plan/pod.py",
        "components/gpu_node_pool.py",
    ):
        assert module in names
    assert "__main__.py" not in names
