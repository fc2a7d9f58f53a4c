"""Dashboards: one per model plus an overview, with SLO thresholds and GPU rows where due."""

from __future__ import annotations

import json

import pytest

from factories import slo
from mlplatform.plan.monitoring import dashboards as dash
from mlplatform.plan.monitoring.inputs import MonitoredModel


def _model(name="iris", gpu=False, **extra) -> MonitoredModel:
    return MonitoredModel(
        name=name,
        namespace="models",
        version="1",
        gpu=gpu,
        hpa_min_replicas=2,
        hpa_max_replicas=6,
        slo=slo(latency_p99_ms=500, error_rate_percent=2, availability_percent=99.5),
        **extra,
    )


@pytest.fixture(scope="module")
def boards():
    models = [_model(), _model("digits", gpu=True, cpu_request="500m", memory_request="1Gi")]
    return dash.dashboards(models)


def _panels(board) -> dict[str, dict]:
    return {p["title"]: p for p in board["panels"] if p["type"] != "row"}


def _exprs(panel) -> list[str]:
    return [t["expr"] for t in panel["targets"]]


def test_one_dashboard_per_model_plus_overview(boards):
    assert set(boards) == {"mlp-overview", "mlp-models-iris", "mlp-models-digits"}
    json.dumps(boards)  # provisioned as JSON files


def test_panel_ids_unique_and_grid_does_not_overlap(boards):
    for board in boards.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        cells = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not area & cells, (board["uid"], panel["title"])
            cells |= area


def test_required_panels_exist(boards):
    titles = set(_panels(boards["mlp-models-iris"]))
    assert {
        "Request rate",
        "Error ratio",
        "Latency quantiles",
        "Requests in flight",
        "Replicas vs HPA bounds",
        "CPU",
        "Memory",
    } <= titles
    assert "GPU utilisation" not in titles
    assert {"GPU utilisation", "GPU memory used"} <= set(_panels(boards["mlp-models-digits"]))


def test_thresholds_come_from_slo_and_hpa(boards):
    panels = _panels(boards["mlp-models-iris"])
    steps = panels["Latency quantiles"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == pytest.approx(0.5)
    steps = panels["Error ratio"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == pytest.approx(0.02)
    assert {"vector(2)", "vector(6)"} <= set(_exprs(panels["Replicas vs HPA bounds"]))
    assert {"p50", "p95", "p99"} == {
        t["legendFormat"] for t in panels["Latency quantiles"]["targets"]
    }


def test_resource_requests_drawn_only_when_known(boards):
    digits = _panels(boards["mlp-models-digits"])
    assert "vector(0.5)" in _exprs(digits["CPU"])
    assert f"vector({2**30})" in _exprs(digits["Memory"])
    iris = _panels(boards["mlp-models-iris"])
    assert not any(e.startswith("vector") for e in _exprs(iris["CPU"]))


def test_queries_use_the_datasource_variable_and_model_selector(boards):
    board = boards["mlp-models-iris"]
    assert board["templating"]["list"][0]["type"] == "datasource"
    for panel in _panels(board).values():
        assert panel["datasource"]["uid"] == "${datasource}"
        for expr in _exprs(panel):
            assert expr.startswith("vector(") or 'namespace="models"' in expr, expr


def test_overview_lists_models_and_links_to_their_dashboards(boards):
    overview = boards["mlp-overview"]
    assert "models/iris" in overview["description"] and "models/digits" in overview["description"]
    assert overview["links"][0]["tags"] == [dash.MODEL_TAG]
    assert dash.MODEL_TAG in boards["mlp-models-iris"]["tags"]
    assert {"Request rate", "Error ratio (5m)", "p99 latency", "Replicas"} <= set(_panels(overview))


def test_overview_without_models_still_builds():
    assert dash.dashboards([])["mlp-overview"]["description"] == "Models: none yet."
