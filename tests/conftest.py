"""Shared pytest setup for every tier: the repo root on sys.path and the project's markers."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # `components` is importable without `pip install -e .` (the unit tier needs no install step).
    sys.path.insert(0, str(ROOT))


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
