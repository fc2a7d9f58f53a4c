"""Stack rules about availability and isolation: PodDisruptionBudgets sized below the HPA floor,
HPAs that point at real workloads, and a NetworkPolicy for every model namespace."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .config import NoConfig, PdbConfig
from .k8s import (
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
    kind_of,
    name_of,
    namespace_of,
    pod_template,
    quantity,
    selector_matches,
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
    """The fewest pods the workload runs in steady state and where that number comes from:
    HPA minReplicas (default 1) when an HPA targets it, else spec.replicas (default 1)."""
    hpa = index.hpa_for(workload)
    if hpa is not None:
        value = get(hpa.props, "spec", "minReplicas", default=1)
        return value, f"minReplicas of {describe(hpa.type, hpa.props, hpa.name)}"
    return get(workload.props, "spec", "replicas", default=1), "spec.replicas"


def _pod_labels(labels: Mapping[str, Any]) -> str:
    """The labels that identify a model's pods, or all of them for other workloads."""
    keys = [k for k in ("app.kubernetes.io/instance", "app.kubernetes.io/name") if k in labels]
    shown = {k: labels[k] for k in keys[:1]} or dict(labels)
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "no labels"


def check_pdb(resources: Sequence[Resource], config: PdbConfig = PdbConfig()) -> list[Violation]:
    """Every Deployment/StatefulSet running >= 2 pods (HPA minReplicas when autoscaled) is covered
    by exactly one PDB whose minAvailable is below that floor (or maxUnavailable >= 1), so a
    node drain neither takes all pods down at once nor hangs forever."""
    index, pdbs = Index(resources), by_type(resources, PDB)
    out = []
    for w in (r for r in resources if r.type in SCALABLE):
        template = pod_template(w.type, w.props)
        ns, name = namespace_of(w.props), name_of(w.props, w.name)
        floor, source = replica_floor(w, index)
        if template is None or any(is_unknown(v) for v in (ns, name, floor)):
            continue
        if f"{ns}/{name}" in config.exempt or quantity(floor) is None or quantity(floor) < 2:
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
        if not covering:
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
            out.extend(_pdb_size(p, obj, floor, source, w.urn))
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


def check_hpa_targets(
    resources: Sequence[Resource], config: NoConfig = NoConfig()
) -> list[Violation]:
    """Every HPA scales a workload of this stack in its namespace, minReplicas <= maxReplicas,
    and a CPU-utilization target has CPU requests to measure against."""
    workloads = {
        (namespace_of(r.props), kind_of(r.type), name_of(r.props, r.name)): r
        for r in resources
        if r.type in SCALABLE
    }
    out = []
    for hpa in by_type(resources, HPA):
        ns, obj = namespace_of(hpa.props), describe(hpa.type, hpa.props, hpa.name)
        ref = get(hpa.props, "spec", "scaleTargetRef", default={})
        kind, name = get(ref, "kind"), get(ref, "name")
        if any(is_unknown(v) for v in (ns, kind, name)):
            continue
        target = workloads.get((ns, kind, name))
        if target is None:
            known = sorted(f"{k}/{n}" for (wns, k, n) in workloads if wns == ns)
            out.append(
                Violation(
                    f"{obj} targets {kind} '{name}', which this stack does not create in namespace "
                    f"'{ns}' (it has: {', '.join(known) or 'none'}); the HPA would report "
                    f"FailedGetScale. Point scaleTargetRef at the model's Deployment.",
                    hpa.urn,
                )
            )
            continue
        lo, hi = (
            get(hpa.props, "spec", "minReplicas", default=1),
            get(hpa.props, "spec", "maxReplicas"),
        )
        if not any(is_unknown(v) or v is None for v in (lo, hi)) and lo > hi:
            out.append(
                Violation(
                    f"{obj} has minReplicas {lo} above maxReplicas {hi}; make min <= max.", hpa.urn
                )
            )
        out.extend(_cpu_requests_for_utilization(hpa, obj, target))
    return out


def _cpu_requests_for_utilization(hpa: Resource, obj: str, target: Resource) -> list[Violation]:
    metrics = get(hpa.props, "spec", "metrics", default=[]) or []
    template = pod_template(target.type, target.props)
    if is_unknown(metrics) or template is None:
        return []
    uses_cpu = any(
        get(m, "type") == "Resource"
        and get(m, "resource", "name") == "cpu"
        and get(m, "resource", "target", "type") == "Utilization"
        for m in metrics
    )
    if not uses_cpu:
        return []
    lacking = [
        c.name
        for c in containers(template, include_init=False)
        if get(c.spec, "resources", "requests", "cpu") is None
    ]
    if not lacking:
        return []
    return [
        Violation(
            f"{obj} scales on CPU utilization but container(s) {', '.join(lacking)} of "
            f"{describe(target.type, target.props, target.name)} request no cpu, so utilization "
            f"cannot be computed. Set resources.requests.cpu.",
            hpa.urn,
        )
    ]


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
