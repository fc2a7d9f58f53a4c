"""Which metrics a generated PromQL expression reads, and every expression monitoring generates.

Used to prove that rules and dashboards only reference series that exist: model-server metrics,
the listed infrastructure metrics, or series recorded by our own rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlplatform.plan.monitoring import dashboards as dashboards
from mlplatform.plan.monitoring import rules as rules
from mlplatform.plan.monitoring.inputs import MonitoredModel

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
}
_AGGREGATORS = {
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects ('sum(rate(x{a="b"}[5m]))' -> {'x'})."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS or word in _AGGREGATORS:
            continue
        names.add(word)
    return names


def _dashboard_exprs(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in board.get("panels", []):
        for target in panel.get("targets") or []:
            yield f"dashboard {board['uid']} / {panel.get('title')}", target["expr"]


def all_expressions(models: list[MonitoredModel]) -> list[tuple[str, str]]:
    """(where, expr) for every rule and dashboard query generated for `models`."""
    found: list[tuple[str, str]] = []
    for model in models:
        for group in rules.rule_groups(model)["groups"]:
            for rule in group["rules"]:
                found.append(
                    (
                        f"rule {group['name']} / {rule.get('record') or rule.get('alert')}",
                        rule["expr"],
                    )
                )
    for board in dashboards.dashboards(models).values():
        found.extend(_dashboard_exprs(board))
    return found


def recorded_names(models: list[MonitoredModel]) -> set[str]:
    """Series names our recording rules produce for `models`."""
    return {
        rule["record"]
        for model in models
        for group in rules.rule_groups(model)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
