"""Every dashboard the monitoring stack generates, for both stacks' real config, decoded strictly
and validated by grafana-foundation-sdk's Go types (`grafana-check`, built by bootstrap): an
unknown dashboard or panel field, or a missing required one, fails. Grafana itself cannot run
here (no server build can be had); this is the check that stands in for loading the dashboards.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness import REPO, tool
from mlplatform.loader import load_stack_file
from mlplatform.plan.monitoring import dashboards as dash
from mlplatform.plan.monitoring.inputs import monitored_models

pytestmark = pytest.mark.integration


def _check(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("grafana-check"), *map(str, files)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_generated_dashboards_pass_the_strict_decoder(stack, tmp_path):
    config = load_stack_file(REPO / f"Pulumi.{stack}.yaml")
    boards = dash.dashboards(monitored_models(config))
    assert len(boards) == len(config.models) + 1, sorted(boards)
    files = []
    for uid, board in boards.items():
        path = tmp_path / f"{uid}.json"
        path.write_text(json.dumps(board))
        files.append(path)
    proc = _check(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok   ") == len(files), proc.stdout


def test_the_decoder_rejects_an_unknown_panel_field(tmp_path):
    config = load_stack_file(REPO / "Pulumi.dev.yaml")
    board = next(iter(dash.dashboards(monitored_models(config)).values()))
    board["panels"][0]["fieldConfigg"] = {}  # a typo Grafana would silently ignore
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(board))
    proc = _check(path)
    assert proc.returncode == 1 and "fieldConfigg" in proc.stdout, proc.stdout + proc.stderr


def test_the_validator_checks_every_panel(tmp_path):
    """A panel wider than Grafana's 24-column grid decodes fine; only validation catches it, and
    only if the validated dashboard still holds its panels (the SDK's strict decoder drops them)."""
    config = load_stack_file(REPO / "Pulumi.dev.yaml")
    board = next(iter(dash.dashboards(monitored_models(config)).values()))
    board["panels"][-1]["gridPos"]["w"] = 25
    path = tmp_path / "too-wide.json"
    path.write_text(json.dumps(board))
    proc = _check(path)
    assert proc.returncode == 1 and "gridPos.w: must be <= 24" in proc.stdout, (
        proc.stdout + proc.stderr
    )
