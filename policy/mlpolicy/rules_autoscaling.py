"""Stack rules about autoscalers that fight each other: two horizontal autoscalers (HPA or KEDA
ScaledObject) on one workload, and a VerticalPodAutoscaler resizing the resource a horizontal one
scales on.

Pulumi hands stack rules the resources the program declares now, not those an update is about to
delete: a move from an HPA to a ScaledObject that adopts it (annotation
`scaledobject.keda.sh/transfer-hpa-ownership`) shows only the ScaledObject. Both in one stack is
therefore never a migration in flight but two owners of one HPA, and is reported like any pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .config import NoConfig
from .k8s import (
    HPA,
    POD_TEMPLATE_PATHS,
    SCALED_OBJECT,
    UNKNOWN,
    VPA,
    Index,
    PodTemplate,
    Resource,
    ResourceSignal,
    Violation,
    by_type,
    containers,
    describe,
    get,
    is_unknown,
    namespace_of,
    pod_template,
    resource_signals,
    vpa_target,
    workload_key,
)

KEDA_TRANSFER_HPA = "scaledobject.keda.sh/transfer-hpa-ownership"
# What a VPA changes when its policy does not say (autoscaling.k8s.io/v1 defaults).
_VPA_DEFAULT_MODE = "Auto"
_VPA_DEFAULT_RESOURCES = frozenset({"cpu", "memory"})


def _workloads(resources: Sequence[Resource]) -> dict[tuple[Any, Any, Any], Resource]:
    return {workload_key(r): r for r in resources if r.type in POD_TEMPLATE_PATHS}


def _target_name(target: tuple[Any, Any, Any], workloads: Mapping[Any, Resource]) -> str:
    workload = workloads.get(target)
    if workload is not None:
        return describe(workload.type, workload.props, workload.name)
    ns, kind, name = target
    return f"{kind} '{ns}/{name}'"


def _adopted_hpa(scaled_object: Resource, hpas: Sequence[Resource]) -> Resource | None:
    """The HPA of ``hpas`` that the ScaledObject takes over: KEDA's HPA has that HPA's name and
    the transfer annotation is "true"."""
    annotation = get(scaled_object.props, "metadata", "annotations", KEDA_TRANSFER_HPA)
    name = get(scaled_object.props, "spec", "advanced", "horizontalPodAutoscalerConfig", "name")
    if annotation != "true" or not isinstance(name, str):
        return None
    ns = namespace_of(scaled_object.props)
    for hpa in hpas:
        if namespace_of(hpa.props) == ns and get(hpa.props, "metadata", "name") == name:
            return hpa
    return None


def check_one_autoscaler(
    resources: Sequence[Resource], config: NoConfig = NoConfig()
) -> list[Violation]:
    """A workload is scaled by at most one HorizontalPodAutoscaler or KEDA ScaledObject: each
    writes the replica count from its own metrics on every sync, so two of them overwrite each
    other and the workload flaps between their answers."""
    index, workloads = Index(resources), _workloads(resources)
    out = []
    for target, autoscalers in sorted(index.autoscalers_by_target.items()):
        if len(autoscalers) < 2:
            continue
        names = ", ".join(describe(a.type, a.props, a.name) for a in autoscalers)
        obj = _target_name(target, workloads)
        hpas = [a for a in autoscalers if a.type == HPA]
        adoptions = [
            (so, hpa)
            for so in autoscalers
            if so.type == SCALED_OBJECT and (hpa := _adopted_hpa(so, hpas)) is not None
        ]
        migration = "".join(
            f" {describe(so.type, so.props, so.name)} adopts {describe(h.type, h.props, h.name)} "
            f"({KEDA_TRANSFER_HPA}), but the program still declares that HPA, so it would have two "
            f"owners, Pulumi and KEDA, each applying its own spec: to move to KEDA, remove the "
            f"HPA from the program in the same update that adds the ScaledObject."
            for so, h in adoptions
        )
        workload = workloads.get(target)
        out.append(
            Violation(
                f"{obj} is scaled by {len(autoscalers)} autoscalers ({names}); each sets its "
                f"replica count from its own metrics, so they overwrite each other and the pods "
                f"flap.{migration} Keep exactly one: put every metric into one HPA's "
                f"spec.metrics or one ScaledObject's spec.triggers (both scale to the largest "
                f"replica count any metric asks for).",
                workload.urn if workload is not None else autoscalers[0].urn,
            )
        )
    return out


def vpa_controlled(vpa: Resource, template: PodTemplate | None) -> Any:
    """What a VPA may resize, per container name: the resources of its container policy (the
    '*' policy for containers without one; cpu and memory when unset; none in mode Off). Without
    the pod template, the policies by name with '*' for the rest. UNKNOWN when not known yet."""
    policies = get(vpa.props, "spec", "resourcePolicy", "containerPolicies", default=[]) or []
    if is_unknown(policies):
        return UNKNOWN
    by_name: dict[str, frozenset[str]] = {}
    for p in policies if isinstance(policies, Sequence) else []:
        name = get(p, "containerName", default="*")
        mode = get(p, "mode", default=_VPA_DEFAULT_MODE)
        controlled = get(p, "controlledResources", default=list(_VPA_DEFAULT_RESOURCES))
        if any(is_unknown(v) for v in (name, mode, controlled)):
            return UNKNOWN
        if mode == "Off" or not isinstance(controlled, Sequence):
            by_name[str(name)] = frozenset()
        else:
            by_name[str(name)] = frozenset(r for r in controlled if isinstance(r, str))
    default = by_name.get("*", _VPA_DEFAULT_RESOURCES)
    if template is None:
        return {**by_name, "*": default}
    return {c.name: by_name.get(c.name, default) for c in containers(template, include_init=False)}


def _resized(signal: ResourceSignal, controlled: Mapping[str, frozenset[str]]) -> bool:
    if signal.container is None:
        return any(signal.resource in resources for resources in controlled.values())
    return signal.resource in controlled.get(signal.container, controlled.get("*", frozenset()))


def check_vpa_disjoint(
    resources: Sequence[Resource], config: NoConfig = NoConfig()
) -> list[Violation]:
    """A VerticalPodAutoscaler that resizes pods (updateMode other than Off) does not control a
    resource (cpu, memory) that an HPA or ScaledObject of the same workload scales on: the VPA
    changes the requests from the same usage the other adds and removes pods on, so replica count
    and requests chase each other. VPA on memory with scaling on cpu (or on Prometheus signals
    only) is fine."""
    index, workloads = Index(resources), _workloads(resources)
    out = []
    for vpa in by_type(resources, VPA):
        mode = get(vpa.props, "spec", "updatePolicy", "updateMode", default=_VPA_DEFAULT_MODE)
        target = vpa_target(vpa)
        if is_unknown(mode) or mode == "Off" or any(is_unknown(v) for v in target):
            continue
        workload = workloads.get(target)
        template = pod_template(workload.type, workload.props) if workload is not None else None
        controlled = vpa_controlled(vpa, template)
        if is_unknown(controlled):
            continue
        for autoscaler in index.autoscalers_of(target):
            signals = resource_signals(autoscaler)
            if is_unknown(signals):
                continue
            clash = sorted({s.resource for s in signals if _resized(s, controlled)})
            if not clash:
                continue
            both = " and ".join(clash)
            other = sorted({"cpu", "memory"} - set(clash))
            fix = (
                f"Set the VPA's controlledResources to [{other[0]}]"
                if other
                else "Take cpu and memory out of the VPA's controlledResources"
            )
            out.append(
                Violation(
                    f"{describe(vpa.type, vpa.props, vpa.name)} (updateMode {mode}) resizes the "
                    f"{both} requests of {_target_name(target, workloads)} while "
                    f"{describe(autoscaler.type, autoscaler.props, autoscaler.name)} scales it on "
                    f"{both}; the VPA changes the requests from the same usage the autoscaler adds "
                    f"and removes pods on, so replica count and requests chase each other. {fix}, "
                    f"set its updateMode to Off (recommendations only), or scale on a Prometheus "
                    f"signal instead of {both}.",
                    vpa.urn,
                )
            )
    return out
