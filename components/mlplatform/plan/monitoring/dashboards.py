"""Grafana dashboards built with grafana-foundation-sdk: one per model and one overview.

Thresholds drawn on panels come from the model's SLO and HPA bounds, so a dashboard always shows
the targets the alerts use. Output is the dashboard JSON model as a plain dict, in Grafana 12's
schema: the SDK release pinned in requirements.txt is the one whose types match the Go SDK that
tests/integration/test_grafana_dashboards.py decodes every dashboard with, strictly.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as gcommon
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus as gprom
from grafana_foundation_sdk.builders import stat as gstat
from grafana_foundation_sdk.builders import timeseries as gts
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from mlplatform.core import metrics as m
from mlplatform.core.quantity import cpu_cores, memory_bytes
from mlplatform.plan.monitoring import rules as r
from mlplatform.plan.monitoring.inputs import MonitoredModel
from mlplatform.plan.monitoring.prometheus import DATASOURCE_UID

OVERVIEW_UID = "mlp-overview"
MODEL_TAG = "mlplatform-model"
_DS = cm.DataSourceRef(type_val="prometheus", uid="${datasource}")
_RATE = "$__rate_interval"


def _query(expr: str, legend: str, ref: str) -> gprom.Dataquery:
    return gprom.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()


def _thresholds(*steps: tuple[float | None, str]) -> gd.ThresholdsConfig:
    return (
        gd.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for value, color in steps])
    )


def _timeseries(
    title: str,
    unit: str,
    queries: list[tuple[str, str]],
    description: str,
    *,
    limit: float | None = None,
    span: int = 8,
) -> gts.Panel:
    """A time series; `limit` draws a dashed red line at an SLO or capacity bound."""
    panel = (
        gts.Panel()
        .title(title)
        .description(description)
        .datasource(_DS)
        .unit(unit)
        .span(span)
        .height(8)
        .min(0)
        .legend(
            gcommon.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_query(expr, legend, chr(ord("A") + index)))
    if limit is not None:
        panel = panel.thresholds(_thresholds((None, "green"), (limit, "red"))).thresholds_style(
            gcommon.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def _stat(
    title: str, unit: str, expr: str, description: str, steps: tuple[tuple[float | None, str], ...]
) -> gstat.Panel:
    return (
        gstat.Panel()
        .title(title)
        .description(description)
        .datasource(_DS)
        .unit(unit)
        .span(6)
        .height(4)
        .with_target(gprom.Dataquery().expr(expr).instant().ref_id("A"))
        .thresholds(_thresholds(*steps))
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .reduce_options(gcommon.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def _datasource_variable() -> gd.DatasourceVariable:
    return (
        gd.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(dm.VariableOption(selected=True, text="Prometheus", value=DATASOURCE_UID))
    )


def _base(uid: str, title: str, tags: list[str], description: str) -> gd.Dashboard:
    return (
        gd.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["mlplatform", *tags])
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .readonly()
        .with_variable(_datasource_variable())
    )


def _to_dict(builder: gd.Dashboard) -> dict[str, Any]:
    built = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    # Provisioned dashboards need unique panel ids; the builder leaves them unset.
    for index, panel in enumerate(built.get("panels", []), start=1):
        panel["id"] = index
    return built


def _pods_of(model: MonitoredModel) -> str:
    """Vector of the model's live pods, to join infrastructure series (cAdvisor, DCGM) on."""
    return (
        f"group by (namespace, pod) ({m.UP}{{{m.pod_selector(model.namespace, model.name)}}} == 1)"
    )


def model_dashboard(model: MonitoredModel) -> dict[str, Any]:
    """Dashboard for one model: traffic, latency, capacity and (GPU models) GPU rows."""
    sel = m.model_selector(model.namespace, model.name)
    own = f'namespace="{model.namespace}", model="{model.name}"'
    slo = model.slo
    pods = _pods_of(model)
    container = f'namespace="{model.namespace}", container="{m.MODEL_SERVER_CONTAINER}"'
    on_pods = f"* on (namespace, pod) group_left () {pods}"
    rate_buckets = f"rate({m.REQUEST_DURATION_BUCKET}{{{sel}}}[{_RATE}])"

    board = _base(
        r.dashboard_uid(model),
        f"Model {model.name} ({model.namespace})",
        [MODEL_TAG, model.namespace],
        f"{model.name} v{model.version}. SLO: p99 <= {slo.latency_p99_ms:g} ms, errors <= "
        f"{slo.error_rate_percent:g}%, availability >= {slo.availability_percent:g}%.",
    )
    board = (
        board.with_row(gd.Row("SLO"))
        .with_panel(
            _stat(
                "Requests/s (5m)",
                "reqps",
                f"{r.REQUEST_RATE.format(w='5m')}{{{own}}}",
                "All requests, successful or not.",
                ((None, "blue"),),
            )
        )
        .with_panel(
            _stat(
                "Errors (1h)",
                "percentunit",
                f"{r.ERROR_RATIO.format(w='1h')}{{{own}}}",
                f"Failed share of requests; SLO {slo.error_rate_percent:g}%.",
                ((None, "green"), (slo.error_budget, "red")),
            )
        )
        .with_panel(
            _stat(
                "p99 latency (5m)",
                "s",
                f"{r.quantile_record(0.99)}{{{own}}}",
                f"SLO {slo.latency_p99_ms:g} ms.",
                ((None, "green"), (slo.latency_seconds, "red")),
            )
        )
        .with_panel(
            _stat(
                "Unavailable (1h)",
                "percentunit",
                f"{r.UNAVAILABLE_RATIO.format(w='1h')}{{{own}}}",
                f"Share of failed scrapes of the model's pods; SLO allows "
                f"{slo.availability_budget:.2%}.",
                ((None, "green"), (slo.availability_budget, "red")),
            )
        )
        .with_row(gd.Row("Traffic"))
        .with_panel(
            _timeseries(
                "Request rate",
                "reqps",
                [
                    (
                        f"sum by (version) (rate({m.REQUEST_SUCCESS}{{{sel}}}[{_RATE}]))",
                        "{{version}} ok",
                    ),
                    (
                        f"sum by (version) (rate({m.REQUEST_FAILURE}{{{sel}}}[{_RATE}]))",
                        "{{version}} failed",
                    ),
                ],
                "Successful and failed inference requests per second, by model version.",
            )
        )
        .with_panel(
            _timeseries(
                "Error ratio",
                "percentunit",
                [
                    (f"{r.ERROR_RATIO.format(w='5m')}{{{own}}}", "5m"),
                    (f"{r.ERROR_RATIO.format(w='1h')}{{{own}}}", "1h"),
                ],
                "Failed share of requests; the dashed line is the SLO.",
                limit=slo.error_budget,
            )
        )
        .with_panel(
            _timeseries(
                "Requests in flight",
                "short",
                [(f"sum by (pod) ({m.IN_FLIGHT}{{{sel}}})", "{{pod}}")],
                "Requests being processed right now, per pod (the autoscaling signal).",
            )
        )
        .with_row(gd.Row("Latency"))
        .with_panel(
            _timeseries(
                "Latency quantiles",
                "s",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) ({rate_buckets}))",
                        f"p{q * 100:g}",
                    )
                    for q in r.QUANTILES
                ],
                "p50/p95/p99 of request duration; the dashed line is the p99 SLO.",
                limit=slo.latency_seconds,
                span=12,
            )
        )
        .with_panel(
            _timeseries(
                "Slower than SLO",
                "percentunit",
                [
                    (f"{r.SLOW_RATIO.format(w='5m')}{{{own}}}", "5m"),
                    (f"{r.SLOW_RATIO.format(w='1h')}{{{own}}}", "1h"),
                ],
                f"Share of requests slower than {slo.latency_p99_ms:g} ms; a p99 SLO allows 1%.",
                limit=r.LATENCY_BUDGET,
                span=12,
            )
        )
        .with_row(gd.Row("Capacity"))
        .with_panel(
            _timeseries(
                "Replicas vs HPA bounds",
                "short",
                [
                    (f"{r.REPLICAS}{{{own}}}", "live replicas"),
                    (f"vector({model.hpa_min_replicas})", "HPA min"),
                    (f"vector({model.hpa_max_replicas})", "HPA max"),
                ],
                "Pods of the stable Deployment answering scrapes, against the HPA's bounds.",
            )
        )
        .with_panel(
            _timeseries(
                "CPU",
                "short",
                [
                    (
                        f"sum by (pod) (rate({m.CPU_USAGE}{{{container}}}[{_RATE}]) {on_pods})",
                        "{{pod}}",
                    ),
                    *(
                        [(f"vector({cpu_cores(model.cpu_request)})", "request")]
                        if model.cpu_request
                        else []
                    ),
                ],
                "CPU cores used by each model-server container (cAdvisor), against its request.",
            )
        )
        .with_panel(
            _timeseries(
                "Memory",
                "bytes",
                [
                    (f"sum by (pod) ({m.MEMORY_WORKING_SET}{{{container}}} {on_pods})", "{{pod}}"),
                    *(
                        [(f"vector({memory_bytes(model.memory_request)})", "request")]
                        if model.memory_request
                        else []
                    ),
                ],
                "Working-set memory of each model-server container (cAdvisor), against its "
                "request.",
            )
        )
    )
    if model.gpu:
        board = (
            board.with_row(gd.Row("GPU"))
            .with_panel(
                _timeseries(
                    "GPU utilisation",
                    "percent",
                    [(f"{m.GPU_UTIL} {on_pods}", "{{pod}} gpu {{gpu}}")],
                    "Per-GPU utilisation of the model's pods (dcgm-exporter).",
                    limit=r.GPU_UTIL_SATURATED_PERCENT,
                    span=12,
                )
            )
            .with_panel(
                _timeseries(
                    "GPU memory used",
                    "percentunit",
                    [
                        (
                            f"{m.GPU_FB_USED} / ({m.GPU_FB_USED} + {m.GPU_FB_FREE}) {on_pods}",
                            "{{pod}} gpu {{gpu}}",
                        )
                    ],
                    "Frame-buffer memory in use per GPU (dcgm-exporter).",
                    limit=r.GPU_MEMORY_SATURATED_RATIO,
                    span=12,
                )
            )
        )
    return _to_dict(board)


def overview_dashboard(models: list[MonitoredModel]) -> dict[str, Any]:
    """One dashboard comparing every monitored model, linking to the per-model dashboards."""
    model_list = ", ".join(f"{x.namespace}/{x.name}" for x in models) or "none yet"
    by_model = "{{namespace}}/{{model}}"
    firing = f'{m.ALERTS}{{alertstate="firing", model!=""}}'
    board = (
        _base(OVERVIEW_UID, "ML models overview", ["overview"], f"Models: {model_list}.")
        .link(
            gd.DashboardLink("Models")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags([MODEL_TAG])
            .as_dropdown(True)
            .keep_time(True)
        )
        .with_panel(
            _stat(
                "Model pods up",
                "short",
                f'count({m.UP}{{job="{m.MODEL_SERVER_JOB}"}} == 1)',
                "Model-server pods answering scrapes.",
                ((None, "blue"),),
            )
        )
        .with_panel(
            _stat(
                "Firing alerts",
                "short",
                f'count({m.ALERTS}{{alertstate="firing", model!=""}}) or vector(0)',
                "Model alerts firing now.",
                ((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            _timeseries(
                "Request rate",
                "reqps",
                [(r.REQUEST_RATE.format(w="5m"), by_model)],
                "Requests per second by model.",
                span=12,
            )
        )
        .with_panel(
            _timeseries(
                "Error ratio (5m)",
                "percentunit",
                [(r.ERROR_RATIO.format(w="5m"), by_model)],
                "Failed share of requests by model; compare with each model's SLO.",
            )
        )
        .with_panel(
            _timeseries(
                "p99 latency",
                "s",
                [(r.quantile_record(0.99), by_model)],
                "99th-percentile request duration by model.",
            )
        )
        .with_panel(
            _timeseries(
                "Replicas", "short", [(r.REPLICAS, by_model)], "Live stable replicas by model."
            )
        )
        .with_panel(
            _timeseries(
                "Requests in flight",
                "short",
                [(r.IN_FLIGHT_SUM, by_model)],
                "Requests being processed now by model (the autoscaling signal).",
            )
        )
        .with_panel(
            _timeseries(
                "Alerts firing",
                "short",
                [
                    (
                        f"count by (model, alertname) ({firing})",
                        "{{model}} {{alertname}}",
                    )
                ],
                "Firing model alerts by model and alert name.",
                span=12,
            )
        )
    )
    return _to_dict(board)


def dashboard_file_name(uid: str) -> str:
    """File (ConfigMap key) a dashboard is provisioned from."""
    return f"{uid}.json"


def dashboards(models: list[MonitoredModel]) -> dict[str, dict[str, Any]]:
    """All dashboards keyed by uid: the overview plus one per model."""
    boards = [overview_dashboard(models), *(model_dashboard(model) for model in models)]
    return {board["uid"]: board for board in boards}
