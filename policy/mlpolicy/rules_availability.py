"""Stack rules about availability and isolation: PodDisruptionBudgets sized below the autoscaler's
floor, HPAs and ScaledObjects that point at real workloads, and a NetworkPolicy for every model
namespace."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .config import NoConfig, PdbConfig
from .k8s import (
    AUTOSCALERS,
    COMPONENT_LABEL,
    DEPLOYMENT,
    HPA,
    MODEL_SERVER,
    NETWORK_POLICY,
    PDB,
    UNKNOWN,
    Index,
    Resource,
    Violation,
    by_type,
    containers,
    describe,
    get,
    is_unknown,
    max_replicas,
    min_replicas,
    name_of,
    namespace_of,
    pod_template,
    quantity,
    resource_signals,
    scale_target,
    selector_matches,
    workload_key,
)

SCALABLE = (DEPLOYMENT, "kubernetes:apps/v1:StatefulSet")


def scaled(value: Any, total: int) -> Any:
    """An int-or-percent PDB field as a pod count; percentages round up like the disruption
    controller does. None when malformed, UNKNOWN when not known yet."""
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, str) and value.endswith("%"):
        pct = quantity(value[:-1])
        return None if pct is None else math.ceil(pct * total / 100)
    q = quantity(value)
    return None if q is None else int(q)


def replica_floor(workload: Resource, index: Index) -> tuple[Any, str]:
    """The fewest pods the workload runs in steady state and where that number comes from: the
    lowest minReplicas (HPA, default 1) or minReplicaCount (KEDA ScaledObject, default 0) of the
    autoscalers targeting it, else spec.replicas (default 1). UNKNOWN while an autoscaler whose
    target is not known yet may be one of them."""
    if index.maybe_more(workload):
        return UNKNOWN, ""
    autoscalers = index.autoscalers_for(workload)
    if not autoscalers:
        return get(workload.props, "spec", "replicas", default=1), "spec.replicas"
    floors = []
    for a in autoscalers:
        value, field_name = min_replicas(a)
        source = f"{field_name} of {describe(a.type, a.props, a.name)}"
        if is_unknown(value) or quantity(value) is None:
            return value, source
        floors.append((quantity(value), value, source))
    _, value, source = min(floors, key=lambda f: f[0])
    return value, source


def _pod_labels(labels: Mapping[str, Any]) -> str:
    """The labels that identify a model's pods, or all of them for other workloads."""
    keys = [k for k in ("app.kubernetes.io/instance", "app.kubernetes.io/name") if k in labels]
    shown = {k: labels[k] for k in keys[:1]} or dict(labels)
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "no labels"


def check_pdb(resources: Sequence[Resource], config: PdbConfig = PdbConfig()) -> list[Violation]:
    """Every Deployment/StatefulSet running >= 2 pods (the autoscaler's minimum when autoscaled)
    is covered by exactly one PDB whose minAvailable is below that floor (or maxUnavailable >= 1),
    so a node drain neither takes all pods down at once nor hangs forever. Below 2 pods (a
    ScaledObject scales to zero by default) no PDB is asked for, but one that is there must still
    let a lone pod be evicted."""
    index, pdbs = Index(resources), by_type(resources, PDB)
    out = []
    for w in (r for r in resources if r.type in SCALABLE):
        template = pod_template(w.type, w.props)
        ns, name = namespace_of(w.props), name_of(w.props, w.name)
        floor, source = replica_floor(w, index)
        if template is None or any(is_unknown(v) for v in (ns, name, floor)):
            continue
        if f"{ns}/{name}" in config.exempt or quantity(floor) is None:
            continue
        floor = int(quantity(floor))
        obj = describe(w.type, w.props, w.name)
        matches = [
            (p, selector_matches(get(p.props, "spec", "selector"), template.labels))
            for p in pdbs
            if namespace_of(p.props) == ns
        ]
        if any(is_unknown(m) for _, m in matches):
            continue
        covering = [p for p, m in matches if m]
        if not covering and floor >= 2:
            out.append(
                Violation(
                    f"{obj} runs at least {floor} pods ({source}) but no PodDisruptionBudget in "
                    f"namespace '{ns}' selects its pods ({_pod_labels(template.labels)}); a node "
                    f"drain may "
                    f"evict all of them at once. Add a PDB with minAvailable {floor - 1} (below "
                    f"{source}) or maxUnavailable 1, or list '{ns}/{name}' in this policy's exempt "
                    f"option.",
                    w.urn,
                )
            )
            continue
        if len(covering) > 1:
            names = ", ".join(describe(p.type, p.props, p.name) for p in covering)
            out.append(
                Violation(
                    f"{obj} is selected by {len(covering)} PodDisruptionBudgets ({names}); the "
                    f"eviction API refuses pods with more than one PDB. Keep exactly one.",
                    w.urn,
                )
            )
        for p in covering:
            if floor >= 2:
                out.extend(_pdb_size(p, obj, floor, source, w.urn))
            else:
                out.extend(_pdb_below_two(p, obj, floor, source, w.urn))
    return out


def _pdb_size(pdb: Resource, obj: str, floor: int, source: str, urn: str) -> list[Violation]:
    pdb_name = describe(pdb.type, pdb.props, pdb.name)
    min_available = scaled(get(pdb.props, "spec", "minAvailable"), floor)
    max_unavailable = scaled(get(pdb.props, "spec", "maxUnavailable"), floor)
    raw_min = get(pdb.props, "spec", "minAvailable")
    raw_max = get(pdb.props, "spec", "maxUnavailable")
    if raw_min is not None and not is_unknown(min_available):
        if min_available is None or min_available >= floor:
            return [
                Violation(
                    f"{pdb_name} has minAvailable {raw_min!r} for {obj}, which is not below "
                    f"{source} = {floor}; at that size no pod can ever be evicted and node drains "
                    f"hang. Set minAvailable to at most {floor - 1} (or maxUnavailable 1).",
                    urn,
                )
            ]
    if raw_max is not None and not is_unknown(max_unavailable):
        if max_unavailable is None or max_unavailable < 1:
            return [
                Violation(
                    f"{pdb_name} has maxUnavailable {raw_max!r} for {obj}, which allows no "
                    f"eviction at {source} = {floor}; node drains hang. Set maxUnavailable to 1 "
                    f"or more.",
                    urn,
                )
            ]
    return []


def _pdb_below_two(pdb: Resource, obj: str, floor: int, source: str, urn: str) -> list[Violation]:
    """A workload that may run one pod: a PDB that keeps that pod blocks drains. (With none the
    PDB has nothing to protect, which needs no finding of its own.)"""
    raw_min = get(pdb.props, "spec", "minAvailable")
    raw_max = get(pdb.props, "spec", "maxUnavailable")
    min_available, max_unavailable = scaled(raw_min, 1), scaled(raw_max, 1)
    if raw_min is not None and not is_unknown(min_available):
        if min_available is not None and min_available < 1:
            return []
        setting = f"minAvailable {raw_min!r}"
        fix = (
            f"Raise {source} to 2 or more so the PDB keeps a pod serving through a drain, or "
            f"use maxUnavailable 1 instead."
        )
    elif raw_max is not None and not is_unknown(max_unavailable):
        if max_unavailable is not None and max_unavailable >= 1:
            return []
        setting, fix = f"maxUnavailable {raw_max!r}", "Set maxUnavailable to 1 or more."
    else:
        return []
    idle = ", scaled to zero when idle: then the PDB protects nothing" if floor == 0 else ""
    return [
        Violation(
            f"{describe(pdb.type, pdb.props, pdb.name)} has {setting} for {obj}, which may run "
            f"a single pod ({source} = {floor}{idle}); at one pod that PDB allows no eviction and "
            f"node drains hang. {fix}",
            urn,
        )
    ]


def check_hpa_targets(
    resources: Sequence[Resource], config: NoConfig = NoConfig()
) -> list[Violation]:
    """Every HPA and KEDA ScaledObject scales a workload of this stack in its namespace, its
    minimum is at most its maximum, and a CPU- or memory-utilization target has requests of that
    resource to measure against."""
    workloads = {workload_key(r): r for r in resources if r.type in SCALABLE}
    out = []
    for a in (r for r in resources if r.type in AUTOSCALERS):
        obj = describe(a.type, a.props, a.name)
        ns, kind, name = scale_target(a)
        if any(is_unknown(v) for v in (ns, kind, name)):
            continue
        target = workloads.get((ns, kind, name))
        if target is None:
            known = sorted(f"{k}/{n}" for (wns, k, n) in workloads if wns == ns)
            consequence = (
                "the HPA would report FailedGetScale"
                if a.type == HPA
                else "KEDA would mark it not ready and scale nothing"
            )
            out.append(
                Violation(
                    f"{obj} targets {kind} '{name}', which this stack does not create in namespace "
                    f"'{ns}' (it has: {', '.join(known) or 'none'}); {consequence}. Point "
                    f"scaleTargetRef at the model's Deployment.",
                    a.urn,
                )
            )
            continue
        out.extend(_min_above_max(a, obj))
        out.extend(_requests_for_utilization(a, obj, target))
    return out


def _min_above_max(autoscaler: Resource, obj: str) -> list[Violation]:
    (lo, lo_field), (hi, hi_field) = min_replicas(autoscaler), max_replicas(autoscaler)
    if is_unknown(lo) or is_unknown(hi):
        return []
    lo_q, hi_q = quantity(lo), quantity(hi)
    if lo_q is None or hi_q is None or lo_q <= hi_q:
        return []
    default = "" if get(autoscaler.props, "spec", hi_field) is not None else " (KEDA's default)"
    return [
        Violation(
            f"{obj} has {lo_field} {lo} above {hi_field} {hi}{default}; make min <= max.",
            autoscaler.urn,
        )
    ]


def _requests_for_utilization(autoscaler: Resource, obj: str, target: Resource) -> list[Violation]:
    signals = resource_signals(autoscaler)
    template = pod_template(target.type, target.props)
    if is_unknown(signals) or template is None:
        return []
    out = []
    for resource in ("cpu", "memory"):
        measured = [s for s in signals if s.resource == resource and s.utilization]
        if not measured:
            continue
        # A container-scoped signal divides by that container's request only.
        scope = (
            None if any(s.container is None for s in measured) else {s.container for s in measured}
        )
        lacking = [
            c.name
            for c in containers(template, include_init=False)
            if (scope is None or c.name in scope)
            and get(c.spec, "resources", "requests", resource) is None
        ]
        if lacking:
            out.append(
                Violation(
                    f"{obj} scales on {resource} utilization but container(s) "
                    f"{', '.join(lacking)} of {describe(target.type, target.props, target.name)} "
                    f"request no {resource}, so utilization cannot be computed. Set "
                    f"resources.requests.{resource}.",
                    autoscaler.urn,
                )
            )
    return out


def _selects_for_ingress(netpol: Resource, labels: Mapping[str, Any]) -> Any:
    matched = selector_matches(get(netpol.props, "spec", "podSelector", default={}), labels)
    if matched is not True:
        return matched
    types = get(netpol.props, "spec", "policyTypes")
    if is_unknown(types):
        return UNKNOWN
    # Without policyTypes the API treats a policy as Ingress (plus Egress if it has egress rules).
    return types is None or "Ingress" in types


def check_network_policies(
    resources: Sequence[Resource], config: NoConfig = NoConfig()
) -> list[Violation]:
    """Every namespace that holds a model Deployment (pods labelled
    app.kubernetes.io/component=model-server) has a NetworkPolicy selecting them for Ingress."""
    netpols = by_type(resources, NETWORK_POLICY)
    missing: dict[str, list[Resource]] = {}
    for d in by_type(resources, DEPLOYMENT):
        template = pod_template(d.type, d.props)
        ns = namespace_of(d.props)
        if (
            template is None
            or is_unknown(ns)
            or template.labels.get(COMPONENT_LABEL) != MODEL_SERVER
        ):
            continue
        verdicts = [
            _selects_for_ingress(n, template.labels) for n in netpols if namespace_of(n.props) == ns
        ]
        if not any(v is True or is_unknown(v) for v in verdicts):
            missing.setdefault(ns, []).append(d)
    out = []
    for ns, deployments in sorted(missing.items()):
        names = ", ".join(describe(d.type, d.props, d.name) for d in deployments)
        for d in deployments:
            out.append(
                Violation(
                    f"Namespace '{ns}' holds model server(s) {names} but no NetworkPolicy there "
                    f"selects their pods for Ingress, so any pod in the cluster can call them. "
                    f"Add a NetworkPolicy (podSelector matching {COMPONENT_LABEL}={MODEL_SERVER}, "
                    f"policyTypes [Ingress]) that admits only the ingress and monitoring "
                    f"namespaces.",
                    d.urn,
                )
            )
    return out
