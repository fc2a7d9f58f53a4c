"""Shared pytest setup for every tier: import paths and the project's markers."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The library (`mlplatform`, from components/; pytest.ini's pythonpath too, for tools that read
# it), the repo root (benchmarks, __main__) and tests/ (factories.py) import without an install.
for folder in (ROOT / "components", ROOT, ROOT / "tests"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def pytest_addoption(parser):
    parser.addoption(
        "--update-snapshots",
        action="store_true",
        default=False,
        help="rewrite tests/unit/snapshots/*.txt from the current resource graphs",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: needs the toolchain from `make bootstrap`")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
