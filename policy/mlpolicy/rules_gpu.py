"""GPU placement rules over the whole stack: tolerations that match a GpuNodePool's taint, and
scale-out that fits the pool's GPUs.

A pool exists when Node or NodePatch resources of the stack carry the taint
`nvidia.com/gpu=<pool>:NoSchedule` (GpuNodePool backends `local` and `existing`), when a
GpuNodePool component registers the output `poolName`, or when the `externalPools` option names
it. Its capacity is the sum of `nvidia.com/gpu` in its nodes' status (allocatable, else capacity);
where the nodes do not show it (before they exist, or on patched nodes), the component's
registered `gpuCapacity` output, else the `externalPools` count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .config import GpuPoolsConfig
from .k8s import (
    DAEMON_SET,
    GPU_POOL_LABEL,
    GPU_RESOURCE,
    GPU_TAINT_KEY,
    NODE,
    NODE_PATCH,
    POD_TEMPLATE_PATHS,
    SHORT_KIND,
    UNKNOWN,
    Index,
    PodTemplate,
    Resource,
    Violation,
    describe,
    get,
    gpus_per_pod,
    is_unknown,
    max_replicas,
    pod_template,
    quantity,
    tolerates,
)

GPU_NODE_POOL_SUFFIX = ":GpuNodePool"


@dataclass
class GpuPool:
    """A pool as the rules see it: its taint, its total GPUs (UNKNOWN until known) and the
    largest single node (None when only the total is declared)."""

    name: str
    source: str
    capacity: Any = Decimal(0)
    largest_node: Decimal | None = None
    nodes: list[str] = field(default_factory=list)

    @property
    def taint(self) -> dict[str, str]:
        return {"key": GPU_TAINT_KEY, "value": self.name, "effect": "NoSchedule"}


def _node_gpus(props: Mapping[str, Any]) -> Any:
    for key in ("allocatable", "capacity"):
        value = get(props, "status", key, GPU_RESOURCE)
        if is_unknown(value):
            return UNKNOWN
        if value is not None:
            return quantity(value)
    return None


def _output(props: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in props:
            return props[n]
    return None


def _node_pools(resources: Sequence[Resource]) -> dict[str, GpuPool]:
    pools: dict[str, GpuPool] = {}
    for node in (r for r in resources if r.type in (NODE, NODE_PATCH)):
        taints = get(node.props, "spec", "taints", default=[]) or []
        if is_unknown(taints):
            continue
        for t in taints:
            if get(t, "key") != GPU_TAINT_KEY or get(t, "effect") != "NoSchedule":
                continue
            name = get(t, "value")
            if not isinstance(name, str):
                continue
            pool = pools.setdefault(name, GpuPool(name, "nodes in this stack"))
            pool.nodes.append(describe(NODE, node.props, node.name))
            gpus = _node_gpus(node.props)
            if gpus is None or is_unknown(gpus) or is_unknown(pool.capacity):
                pool.capacity, pool.largest_node = UNKNOWN, None
            else:
                pool.capacity += gpus
                pool.largest_node = max(pool.largest_node or Decimal(0), gpus)
    return pools


def gpu_pools(resources: Sequence[Resource], config: GpuPoolsConfig) -> dict[str, GpuPool]:
    """Every GPU pool the stack's pods may target, keyed by pool name."""
    pools = _node_pools(resources)
    for comp in (r for r in resources if r.type.endswith(GPU_NODE_POOL_SUFFIX)):
        name = _output(comp.props, "poolName", "pool_name")
        if not isinstance(name, str):
            continue
        gpus = _output(comp.props, "gpuCapacity", "gpu_capacity")
        count = UNKNOWN if is_unknown(gpus) or gpus is None else quantity(gpus)
        pool = pools.setdefault(
            name, GpuPool(name, f"GpuNodePool {comp.name or comp.urn}", UNKNOWN)
        )
        if is_unknown(pool.capacity) and count is not None:
            pool.capacity = count
    for name, gpus in config.external_pools.items():
        pool = pools.setdefault(name, GpuPool(name, "externalPools option", Decimal(gpus)))
        if is_unknown(pool.capacity):
            pool.capacity = Decimal(gpus)
    return pools


def _pinned_pools(spec: Mapping[str, Any]) -> set[str] | None:
    """Pools a pod is pinned to by nodeSelector or required node affinity; None if unpinned."""
    pinned: set[str] | None = None
    selected = get(spec, "nodeSelector", GPU_POOL_LABEL)
    if isinstance(selected, str):
        pinned = {selected}
    terms = (
        get(
            spec,
            "affinity",
            "nodeAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
            "nodeSelectorTerms",
            default=[],
        )
        or []
    )
    if is_unknown(terms):
        return pinned
    allowed: set[str] = set()
    for term in terms:
        for expr in get(term, "matchExpressions", default=[]) or []:
            if get(expr, "key") == GPU_POOL_LABEL and get(expr, "operator") == "In":
                allowed |= {v for v in get(expr, "values", default=[]) or [] if isinstance(v, str)}
    if allowed:
        pinned = allowed if pinned is None else pinned & allowed
    return pinned


def _tolerated(spec: Mapping[str, Any], pools: dict[str, GpuPool]) -> Any:
    tolerations = get(spec, "tolerations", default=[]) or []
    if is_unknown(tolerations):
        return UNKNOWN
    return {
        name
        for name, pool in pools.items()
        if any(isinstance(t, Mapping) and tolerates(t, pool.taint) for t in tolerations)
    }


def _gpu_tolerations(spec: Mapping[str, Any]) -> list[str]:
    """Pool values of tolerations aimed at the GPU taint (for naming pools that do not exist)."""
    return [
        get(t, "value")
        for t in get(spec, "tolerations", default=[]) or []
        if isinstance(t, Mapping) and get(t, "key") == GPU_TAINT_KEY and get(t, "value")
    ]


@dataclass(frozen=True)
class GpuWorkload:
    resource: Resource
    template: PodTemplate
    gpus: Any


def gpu_workloads(resources: Sequence[Resource]) -> list[GpuWorkload]:
    out = []
    for r in resources:
        if r.type not in POD_TEMPLATE_PATHS:
            continue
        template = pod_template(r.type, r.props)
        if template is None:
            continue
        gpus = gpus_per_pod(template)
        if is_unknown(gpus) or gpus > 0:
            out.append(GpuWorkload(r, template, gpus))
    return out


def _expected_toleration(pools: dict[str, GpuPool]) -> str:
    if not pools:
        return (
            "no GpuNodePool is declared in this stack and no externalPools are configured; add a "
            "GPU pool to the stack config, or list the cluster's pools in the policy's "
            "externalPools option"
        )
    example = sorted(pools)[0]
    return (
        f"add the toleration {{key: {GPU_TAINT_KEY}, operator: Equal, value: <pool>, effect: "
        f"NoSchedule}} for one of the declared pools: {', '.join(sorted(pools))} "
        f"(e.g. value: {example})"
    )


def check_gpu_tolerations(
    resources: Sequence[Resource], config: GpuPoolsConfig = GpuPoolsConfig()
) -> list[Violation]:
    """A pod that requests nvidia.com/gpu tolerates the taint of a declared GPU pool (and of the
    pool it is pinned to, if pinned); every node labelled as a GPU pool carries that taint."""
    pools = gpu_pools(resources, config)
    out = []
    for w in gpu_workloads(resources):
        r = w.resource
        obj = describe(r.type, r.props, r.name)
        tolerated = _tolerated(w.template.spec, pools)
        if is_unknown(tolerated) or is_unknown(w.gpus):
            continue
        pinned = _pinned_pools(w.template.spec)
        if not tolerated:
            stray = [p for p in _gpu_tolerations(w.template.spec) if p not in pools]
            why = (
                f" (it tolerates pool(s) {', '.join(stray)}, which no GpuNodePool declares)"
                if stray
                else ""
            )
            out.append(
                Violation(
                    f"{obj} requests {w.gpus} {GPU_RESOURCE} per pod but tolerates no GPU pool's "
                    f"taint{why}, so it can never be scheduled onto a GPU node; "
                    f"{_expected_toleration(pools)}.",
                    r.urn,
                )
            )
        elif pinned is not None and not pinned:
            out.append(
                Violation(
                    f"{obj} has a nodeSelector and a required node affinity on {GPU_POOL_LABEL} "
                    f"that name no common pool, so its pods would stay Pending. Pin one pool in "
                    f"both.",
                    r.urn,
                )
            )
        elif pinned is not None and not (pinned & tolerated):
            out.append(
                Violation(
                    f"{obj} is pinned to GPU pool(s) {', '.join(sorted(pinned))} by "
                    f"{GPU_POOL_LABEL} but tolerates only the taint of "
                    f"{', '.join(sorted(tolerated))}; its pods would stay Pending. Make the "
                    f"toleration value and the node affinity "
                    f"name the same pool.",
                    r.urn,
                )
            )
    for node in (r for r in resources if r.type in (NODE, NODE_PATCH)):
        label = get(node.props, "metadata", "labels", GPU_POOL_LABEL)
        taints = get(node.props, "spec", "taints", default=[]) or []
        if not isinstance(label, str) or is_unknown(taints):
            continue
        expected = GpuPool(label, "").taint
        if not any(
            isinstance(t, Mapping) and all(t.get(k) == v for k, v in expected.items())
            for t in taints
        ):
            out.append(
                Violation(
                    f"{describe(node.type, node.props, node.name)} is labelled "
                    f"{GPU_POOL_LABEL}={label} but lacks the taint "
                    f"{GPU_TAINT_KEY}={label}:NoSchedule, so CPU pods can be scheduled onto it. "
                    f"Add the taint to the node.",
                    node.urn,
                )
            )
    return out


def max_pods(w: GpuWorkload, index: Index) -> tuple[Any, str]:
    """The most pods the workload may run at once and where that number comes from: the highest
    maxReplicas (HPA) or maxReplicaCount (KEDA ScaledObject, default 100) of the autoscalers
    targeting it, otherwise spec.replicas (Deployments, default 1) or parallelism (Jobs, default
    1). UNKNOWN while an autoscaler whose target is not known yet may scale it."""
    r = w.resource
    if index.maybe_more(r):
        return UNKNOWN, ""
    ceilings = []
    for a in index.autoscalers_for(r):
        value, field_name = max_replicas(a)
        source = f"{SHORT_KIND[a.type]} {field_name}"
        if is_unknown(value) or quantity(value) is None:
            return value, source
        ceilings.append((quantity(value), value, source))
    if ceilings:
        _, value, source = max(ceilings, key=lambda c: c[0])
        return value, source
    if r.type == "kubernetes:batch/v1:Job":
        return get(r.props, "spec", "parallelism", default=1), "parallelism"
    if r.type == "kubernetes:batch/v1:CronJob":
        return get(r.props, "spec", "jobTemplate", "spec", "parallelism", default=1), "parallelism"
    if r.type == "kubernetes:core/v1:Pod":
        return 1, "replicas"
    return get(r.props, "spec", "replicas", default=1), "replicas"


def _candidate_pools(w: GpuWorkload, pools: dict[str, GpuPool]) -> Any:
    tolerated = _tolerated(w.template.spec, pools)
    if is_unknown(tolerated):
        return UNKNOWN
    pinned = _pinned_pools(w.template.spec)
    return tolerated if pinned is None else tolerated & pinned


def check_gpu_capacity(
    resources: Sequence[Resource], config: GpuPoolsConfig = GpuPoolsConfig()
) -> list[Violation]:
    """maxReplicas x GPUs per pod fits the GPUs of the pool(s) the pod can land on, and one pod's
    GPUs fit on the pool's largest node."""
    pools, index = gpu_pools(resources, config), Index(resources)
    out = []
    for w in gpu_workloads(resources):
        r = w.resource
        candidates, (replicas, source) = _candidate_pools(w, pools), max_pods(w, index)
        if any(is_unknown(v) for v in (candidates, replicas, w.gpus)) or not candidates:
            continue  # no pool at all is gpu-toleration's finding
        if quantity(replicas) is None:
            continue
        capacities = [pools[p].capacity for p in candidates]
        if any(is_unknown(c) for c in capacities):
            continue
        total, need = sum(capacities, Decimal(0)), quantity(replicas) * w.gpus
        obj, names = describe(r.type, r.props, r.name), ", ".join(sorted(candidates))
        if need > total:
            fit = int(total // w.gpus)
            out.append(
                Violation(
                    f"{obj} can run {_num(replicas)} pods ({source}) x {_num(w.gpus)} "
                    f"{GPU_RESOURCE} = {_num(need)} GPUs, but GPU pool(s) {names} have "
                    f"{_num(total)}; the extra pods would stay Pending. Lower {source} to at "
                    f"most {fit} or add GPU nodes to the pool.",
                    r.urn,
                )
            )
        largest = [pools[p].largest_node for p in candidates if pools[p].largest_node is not None]
        if largest and len(largest) == len(candidates) and w.gpus > max(largest):
            out.append(
                Violation(
                    f"{obj} asks for {_num(w.gpus)} {GPU_RESOURCE} per pod but the largest node of "
                    f"pool(s) {names} has {_num(max(largest))}; no node can ever hold one pod. "
                    f"Request fewer GPUs per pod or use nodes with more GPUs.",
                    r.urn,
                )
            )
    return out


def check_gpu_pool_oversubscription(
    resources: Sequence[Resource], config: GpuPoolsConfig = GpuPoolsConfig()
) -> list[Violation]:
    """All workloads that can only land on one pool, at their maximum scale, fit in it together."""
    pools, index = gpu_pools(resources, config), Index(resources)
    demand: dict[str, list[tuple[str, Decimal]]] = {}
    for w in gpu_workloads(resources):
        candidates, (replicas, _) = _candidate_pools(w, pools), max_pods(w, index)
        if any(is_unknown(v) for v in (candidates, replicas, w.gpus)) or len(candidates) != 1:
            continue
        if quantity(replicas) is None:
            continue
        (pool,) = candidates
        obj = describe(w.resource.type, w.resource.props, w.resource.name)
        demand.setdefault(pool, []).append((obj, quantity(replicas) * w.gpus))
    out = []
    for pool, users in sorted(demand.items()):
        total, capacity = sum((n for _, n in users), Decimal(0)), pools[pool].capacity
        if len(users) > 1 and not is_unknown(capacity) and total > capacity:
            parts = ", ".join(f"{o}: {_num(n)}" for o, n in users)
            out.append(
                Violation(
                    f"GPU pool '{pool}' has {_num(capacity)} GPUs but its workloads at full scale "
                    f"need {_num(total)} ({parts}); they cannot all scale out at once. Lower their "
                    f"maxReplicas or grow the pool."
                )
            )
    return out


def check_cpu_pods_off_gpu_nodes(
    resources: Sequence[Resource], config: GpuPoolsConfig = GpuPoolsConfig()
) -> list[Violation]:
    """Pods that request no GPU do not tolerate a GPU pool's taint, so they never take a GPU
    node's place from a model that needs it. DaemonSets are exempt: node agents (device plugin,
    exporters) must run on GPU nodes too."""
    pools = gpu_pools(resources, config)
    gpu = {id(w.resource) for w in gpu_workloads(resources)}
    out = []
    for r in resources:
        template = pod_template(r.type, r.props) if r.type in POD_TEMPLATE_PATHS else None
        if template is None or id(r) in gpu or r.type == DAEMON_SET:
            continue
        tolerated = _tolerated(template.spec, pools)
        if not is_unknown(tolerated) and tolerated:
            out.append(
                Violation(
                    f"{describe(r.type, r.props, r.name)} requests no {GPU_RESOURCE} but tolerates "
                    f"the taint of GPU pool(s) {', '.join(sorted(tolerated))}, so it may occupy "
                    f"a GPU node. Remove the toleration (or request a GPU).",
                    r.urn,
                )
            )
    return out


def _num(value: Any) -> str:
    d = Decimal(str(value))
    return str(int(d)) if d == d.to_integral_value() else str(d.normalize())
