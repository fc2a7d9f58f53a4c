"""Prometheus recording and alerting rules derived from each model's SLO (pure functions).

Per model two groups: recordings (SLIs over the burn-rate windows, quantiles, replica count) and
alerts (multi-window burn rates for errors, latency and availability; HPA pinned at max; too few
replicas; restarts; targets down or absent; GPU saturation for GPU models). The output is the
Prometheus rule-file structure, used verbatim as a rule file (deploy mode) or as a PrometheusRule
spec (operator mode).
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlplatform.core import metrics as m
from mlplatform.core.slo import FAST_BURN, SLOW_BURN
from mlplatform.plan.monitoring.inputs import MonitoredModel

# Burn-rate windows: (long, short) pairs; the short one makes the alert stop soon after recovery.
FAST_WINDOWS = ("1h", "5m")
SLOW_WINDOWS = ("6h", "30m")
WINDOWS = ("5m", "30m", "1h", "6h")
# p99 target: 1 % of requests may be slower than the threshold.
LATENCY_BUDGET = 0.01
QUANTILES = (0.5, 0.95, 0.99)  # drawn on dashboards
RECORDED_QUANTILES = (0.99,)  # read by alerts' context and the overview
GPU_UTIL_SATURATED_PERCENT = 90
GPU_MEMORY_SATURATED_RATIO = 0.95

# Recorded series names (level:metric:operation), shared with the dashboards.
ERROR_RATIO = "namespace_model:model_infer_request_errors:ratio_rate{w}"
SLOW_RATIO = "namespace_model:model_infer_request_slow:ratio_rate{w}"
UNAVAILABLE_RATIO = "namespace_model:model_server_unavailable:ratio_avg{w}"
REQUEST_RATE = "namespace_model:model_infer_requests:rate{w}"
FAILURE_RATE = "namespace_model:model_infer_request_failures:rate{w}"
SUCCESS_RATE = "namespace_model:model_infer_request_successes:rate{w}"
LATENCY_QUANTILE = "namespace_model:model_infer_request_duration_seconds:p{q}_rate5m"
IN_FLIGHT_SUM = "namespace_model:model_infer_requests_in_flight:sum"
REPLICAS = "namespace_model:model_server_replicas:count"
GPU_UTIL = "namespace_model:gpu_utilization_percent:avg"
GPU_MEMORY = "namespace_model:gpu_memory_used:ratio"


def quantile_record(quantile: float) -> str:
    """Recorded series name of a latency quantile (0.99 -> ...:p99_rate5m)."""
    return LATENCY_QUANTILE.format(q=f"{quantile * 100:g}".replace(".", "_"))


def dashboard_uid(model: MonitoredModel) -> str:
    """Grafana uid of a model's dashboard; deterministic and within Grafana's 40 characters."""
    uid = f"mlp-{model.namespace}-{model.name}"
    if len(uid) <= 40:
        return uid
    # Cutting alone could give two long names the same uid; the digest keeps them apart.
    return f"{uid[:31]}-{hashlib.sha256(uid.encode()).hexdigest()[:8]}"


def _sum(expr: str) -> str:
    return f"sum by (namespace, model) ({expr})"


def recording_rules(model: MonitoredModel) -> list[dict[str, Any]]:
    """Recording rules for one model, in evaluation order (later rules read earlier ones)."""
    sel = m.model_selector(model.namespace, model.name)
    own = f'namespace="{model.namespace}", model="{model.name}"'
    static = {"model": model.name}
    le = m.le_label(model.slo.latency_seconds)
    fast = f'{m.REQUEST_DURATION_BUCKET}{{{sel}, le="{le}"}}'
    total = f"{m.REQUEST_DURATION_COUNT}{{{sel}}}"
    up_all = f"{m.UP}{{{m.pod_selector(model.namespace, model.name)}}}"
    up_stable = f"{m.UP}{{{m.pod_selector(model.namespace, model.name, stable_only=True)}}}"
    rules: list[dict[str, Any]] = []
    for w in WINDOWS:
        success = _sum(f"rate({m.REQUEST_SUCCESS}{{{sel}}}[{w}])")
        # A labelled counter exists only after its first use, so "no failure series" must read as 0
        # while requests flow, not as "no data".
        failure = f"{_sum(f'rate({m.REQUEST_FAILURE}{{{sel}}}[{w}])')} or 0 * {success}"
        rules += [
            {"record": SUCCESS_RATE.format(w=w), "expr": success},
            {"record": FAILURE_RATE.format(w=w), "expr": failure},
            {
                "record": REQUEST_RATE.format(w=w),
                "expr": f"{SUCCESS_RATE.format(w=w)}{{{own}}} "
                f"+ {FAILURE_RATE.format(w=w)}{{{own}}}",
            },
            {
                "record": ERROR_RATIO.format(w=w),
                "expr": f"{FAILURE_RATE.format(w=w)}{{{own}}} "
                f"/ {REQUEST_RATE.format(w=w)}{{{own}}}",
            },
            {
                "record": SLOW_RATIO.format(w=w),
                "expr": f"1 - {_sum(f'rate({fast}[{w}])')} / {_sum(f'rate({total}[{w}])')}",
            },
            {
                "record": UNAVAILABLE_RATIO.format(w=w),
                "expr": f"1 - avg by (namespace) (avg_over_time({up_all}[{w}]))",
                "labels": dict(static),
            },
        ]
    for q in RECORDED_QUANTILES:
        rules.append(
            {
                "record": quantile_record(q),
                "expr": f"histogram_quantile({q}, sum by (namespace, model, le) "
                f"(rate({m.REQUEST_DURATION_BUCKET}{{{sel}}}[5m])))",
            }
        )
    rules += [
        {"record": IN_FLIGHT_SUM, "expr": _sum(f"{m.IN_FLIGHT}{{{sel}}}")},
        {
            "record": REPLICAS,
            "expr": f"count by (namespace) ({up_stable} == 1)",
            "labels": dict(static),
        },
    ]
    if model.gpu:
        # dcgm-exporter labels each GPU with the pod using it; joining on the model's live targets
        # keeps GPUs of other workloads out without guessing pod-name patterns.
        pods = f"group by (namespace, pod) ({up_all} == 1)"
        rules += [
            {
                "record": GPU_UTIL,
                "expr": f"avg by (namespace) "
                f"({m.GPU_UTIL} * on (namespace, pod) group_left () {pods})",
                "labels": dict(static),
            },
            {
                "record": GPU_MEMORY,
                "expr": (
                    f"max by (namespace) ({m.GPU_FB_USED} / ({m.GPU_FB_USED} + {m.GPU_FB_FREE})"
                    f" * on (namespace, pod) group_left () {pods})"
                ),
                "labels": dict(static),
            },
        ]
    return rules


def _alert(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    model: MonitoredModel,
    summary: str,
    description: str,
    **labels: str,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {
            "severity": severity,
            "model": model.name,
            "namespace": model.namespace,
            **labels,
        },
        "annotations": {
            "summary": summary,
            "description": description,
            "dashboard": f"/d/{dashboard_uid(model)}",
        },
    }


def _burn(record: str, own: str, windows: tuple[str, str], threshold: float) -> str:
    long_w, short_w = windows
    return (
        f"{record.format(w=long_w)}{{{own}}} > {threshold:.6g}\n"
        f"and\n{record.format(w=short_w)}{{{own}}} > {threshold:.6g}"
    )


def _burn_alerts(model: MonitoredModel, own: str) -> list[dict[str, Any]]:
    slo = model.slo
    specs = [
        ("Errors", ERROR_RATIO, slo.error_budget, "errors", "of requests failed"),
        (
            "Latency",
            SLOW_RATIO,
            LATENCY_BUDGET,
            "latency",
            f"of requests took longer than {slo.latency_p99_ms:g} ms",
        ),
        (
            "Availability",
            UNAVAILABLE_RATIO,
            slo.availability_budget,
            "availability",
            "of scrapes of its pods failed",
        ),
    ]
    alerts = []
    for kind, record, budget, slo_name, what in specs:
        for speed, windows, factor, for_, severity in (
            ("Fast", FAST_WINDOWS, FAST_BURN, "2m", "critical"),
            ("Slow", SLOW_WINDOWS, SLOW_BURN, "15m", "warning"),
        ):
            threshold = budget * factor
            alerts.append(
                _alert(
                    f"Model{kind}BudgetBurn{speed}",
                    _burn(record, own, windows, threshold),
                    for_,
                    severity,
                    model,
                    f"{model.name}: {slo_name} SLO budget burning at {factor:g}x",
                    f"{{{{ $value | humanizePercentage }}}} {what} over the last {windows[0]} "
                    f"for {model.name} in {model.namespace}; the SLO allows {budget * 100:.4g}%, "
                    f"this alert fires above {factor:g}x that ({threshold * 100:.4g}%).",
                    slo=slo_name,
                )
            )
    return alerts


def alert_rules(model: MonitoredModel) -> list[dict[str, Any]]:
    """Alerting rules for one model."""
    own = f'namespace="{model.namespace}", model="{model.name}"'
    pods = m.pod_selector(model.namespace, model.name)
    alerts = _burn_alerts(model, own)
    # With min == max the HPA cannot scale, so "pinned at max" would fire forever.
    if model.hpa_max_replicas > model.hpa_min_replicas:
        alerts.append(
            _alert(
                "ModelReplicasAtHPAMax",
                f"{REPLICAS}{{{own}}} >= {model.hpa_max_replicas}",
                "15m",
                "warning",
                model,
                f"{model.name} has run at its HPA maximum for 15 minutes",
                f"{{{{ $value }}}} replicas of {model.name} are up, the HPA maximum is "
                f"{model.hpa_max_replicas}; the autoscaler has no room left. Raise hpaMaxReplicas "
                "or add capacity.",
            )
        )
    alerts += [
        _alert(
            "ModelReplicasBelowHPAMin",
            f"({REPLICAS}{{{own}}} or on () vector(0)) < {model.hpa_min_replicas}",
            "15m",
            "warning",
            model,
            f"{model.name} has fewer live replicas than its HPA minimum",
            f"Only {{{{ $value }}}} replicas of {model.name} answer scrapes; the HPA minimum is "
            f"{model.hpa_min_replicas}. Check pod events and scheduling.",
        ),
        _alert(
            "ModelServerRestarted",
            f"changes({m.PROCESS_START}{{{pods}}}[15m]) > 0",
            "0m",
            "warning",
            model,
            f"A {model.name} server restarted",
            "Pod {{ $labels.pod }} restarted its model server {{ $value }} times in 15 "
            "minutes (crash, OOM kill or failed liveness probe).",
        ),
        _alert(
            "ModelServerTargetDown",
            f"{m.UP}{{{pods}}} == 0",
            "5m",
            "warning",
            model,
            f"A {model.name} pod does not answer scrapes",
            f"Prometheus cannot scrape {{{{ $labels.pod }}}} of {model.name} on /metrics.",
        ),
        _alert(
            "ModelServerAbsent",
            f"absent({m.UP}{{{pods}}})",
            "10m",
            "critical",
            model,
            f"No {model.name} pod has been discovered for 10 minutes",
            f"Prometheus finds no pod of {model.name} in {model.namespace} (labels "
            "app.kubernetes.io/component=model-server, port named http).",
        ),
    ]
    if model.gpu:
        alerts += [
            _alert(
                "ModelGPUSaturated",
                f"{GPU_UTIL}{{{own}}} > {GPU_UTIL_SATURATED_PERCENT}",
                "15m",
                "warning",
                model,
                f"{model.name} GPUs are saturated",
                f"Average GPU utilisation of {model.name} pods is {{{{ $value }}}}% (threshold "
                f"{GPU_UTIL_SATURATED_PERCENT}%).",
            ),
            _alert(
                "ModelGPUMemorySaturated",
                f"{GPU_MEMORY}{{{own}}} > {GPU_MEMORY_SATURATED_RATIO}",
                "15m",
                "warning",
                model,
                f"{model.name} GPU memory is nearly full",
                f"{{{{ $value | humanizePercentage }}}} of GPU memory is used by {model.name} "
                f"(threshold {GPU_MEMORY_SATURATED_RATIO:.0%}).",
            ),
        ]
    return alerts


def rule_groups(model: MonitoredModel) -> dict[str, Any]:
    """The rule file (``{"groups": [...]}``) for one model."""
    prefix = f"mlplatform.{model.namespace}.{model.name}"
    return {
        "groups": [
            {"name": f"{prefix}.recording", "rules": recording_rules(model)},
            {"name": f"{prefix}.alerts", "rules": alert_rules(model)},
        ]
    }


def rule_file_name(model: MonitoredModel) -> str:
    """File name of a model's rule file in the rules ConfigMap (keys must be unique)."""
    return f"{model.namespace}.{model.name}.rules.yaml"
