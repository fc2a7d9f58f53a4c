"""Plain-data views of Kubernetes objects as the policy engine hands them to the rules.

Props are the Kubernetes object in camelCase (pulumi-kubernetes 4.x). During `pulumi preview` some
values are not known yet (an image digest that a build will produce, a generated name); the adapter
replaces those with ``UNKNOWN`` so that rules can skip exactly the check that cannot be judged yet
instead of guessing. The same rules run again with known values during `pulumi up`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any


class _Unknown:
    """A value the engine cannot know before the update runs."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown until apply>"


UNKNOWN: Any = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


@dataclass(frozen=True)
class Resource:
    """One resource of the stack as a stack rule sees it: its type token, props and URN."""

    type: str
    props: Mapping[str, Any]
    urn: str = ""
    name: str = ""


@dataclass(frozen=True)
class Violation:
    """A rule's finding; ``urn`` pins it to a resource in the engine's report ('' = whole stack)."""

    message: str
    urn: str = ""


# Where each workload kind keeps its pod template; a Pod is its own template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template"),
    "kubernetes:batch/v1:Job": ("spec", "template"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template"),
    "kubernetes:core/v1:Pod": (),
}
# Kinds whose pods are expected to run until replaced; run-to-completion pods need no probes.
LONG_RUNNING = {
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet",
}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
VPA = "kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler"
# Horizontal autoscalers: each sets its target's replica count (KEDA through an HPA it owns).
AUTOSCALERS = (HPA, SCALED_OBJECT)
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NODE = "kubernetes:core/v1:Node"
NODE_PATCH = "kubernetes:core/v1:NodePatch"

# Names shared with the component library (docs/contracts.md).
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_POOL_LABEL = "mlplatform.io/gpu-pool"
COMPONENT_LABEL = "app.kubernetes.io/component"
MODEL_SERVER = "model-server"


def get(obj: Any, *path: str | int, default: Any = None) -> Any:
    """Walks ``path`` through dicts/lists; UNKNOWN anywhere on the way stays UNKNOWN."""
    for key in path:
        if is_unknown(obj):
            return UNKNOWN
        if isinstance(key, int):
            if not isinstance(obj, Sequence) or isinstance(obj, str) or key >= len(obj):
                return default
            obj = obj[key]
        else:
            if not isinstance(obj, Mapping) or key not in obj:
                return default
            obj = obj[key]
    return obj


def kind_of(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def namespace_of(props: Mapping[str, Any]) -> Any:
    ns = get(props, "metadata", "namespace")
    return "default" if ns in (None, "") else ns


def name_of(props: Mapping[str, Any], fallback: str = "") -> Any:
    name = get(props, "metadata", "name")
    if name in (None, ""):
        return fallback or "<unnamed>"
    return name


def describe(resource_type: str, props: Mapping[str, Any], fallback_name: str = "") -> str:
    """``Deployment 'ns/name'`` — how messages name the object a user has to fix."""
    ns, name = namespace_of(props), name_of(props, fallback_name)
    if resource_type in (NODE, NODE_PATCH, "kubernetes:core/v1:Namespace"):
        return f"{kind_of(resource_type)} '{name}'"
    return f"{kind_of(resource_type)} '{ns}/{name}'"


@dataclass(frozen=True)
class PodTemplate:
    """A workload's pod template: where it sits (for messages), its labels and its pod spec."""

    path: str
    labels: Mapping[str, Any]
    spec: Mapping[str, Any]


def pod_template(resource_type: str, props: Mapping[str, Any]) -> PodTemplate | None:
    """The pod template of a workload kind; None for kinds without pods or with an unknown spec."""
    if resource_type not in POD_TEMPLATE_PATHS:
        return None
    path = POD_TEMPLATE_PATHS[resource_type]
    template = get(props, *path) if path else props
    spec = get(template, "spec")
    if not isinstance(spec, Mapping):
        return None
    labels = get(template, "metadata", "labels", default={})
    return PodTemplate(
        path=".".join((*path, "spec")),
        labels=labels if isinstance(labels, Mapping) else {},
        spec=spec,
    )


@dataclass(frozen=True)
class Container:
    """One container of a pod spec and its field path (``spec.template.spec.containers[0]``)."""

    path: str
    name: str
    spec: Mapping[str, Any]
    init: bool = False


def containers(template: PodTemplate, include_init: bool = True) -> Iterator[Container]:
    groups = [("containers", False)] + ([("initContainers", True)] if include_init else [])
    for key, init in groups:
        items = get(template.spec, key, default=[])
        if is_unknown(items) or not isinstance(items, Sequence):
            continue
        for i, c in enumerate(items):
            if isinstance(c, Mapping):
                name = get(c, "name", default=f"#{i}")
                yield Container(f"{template.path}.{key}[{i}]", str(name), c, init)


def container_label(c: Container) -> str:
    return f"{'init container' if c.init else 'container'} '{c.name}'"


_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity ("500m", "2Gi", 1) as a Decimal; None when malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value.strip())
    if not m:
        return None
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return None
    return number * Decimal(_SUFFIXES[m.group(2)]) if m.group(2) else number


def gpus_per_pod(template: PodTemplate) -> Any:
    """GPUs one pod holds: the sum over app containers, or the largest init container if larger
    (init containers run one at a time before the app containers). UNKNOWN if any count is."""
    app, init = Decimal(0), Decimal(0)
    for c in containers(template):
        res = get(c.spec, "resources", default={})
        count = get(res, "limits", GPU_RESOURCE)
        if count is None:
            count = get(res, "requests", GPU_RESOURCE)
        if is_unknown(count):
            return UNKNOWN
        q = quantity(count) if count is not None else Decimal(0)
        q = q if q is not None else Decimal(0)
        if c.init:
            init = max(init, q)
        else:
            app += q
    return max(app, init)


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> Any:
    """Kubernetes label-selector semantics (matchLabels + matchExpressions); an empty selector
    matches everything. Returns UNKNOWN when the selector or a label value is not known yet."""
    if is_unknown(selector):
        return UNKNOWN
    if not isinstance(selector, Mapping):
        return False
    match_labels = get(selector, "matchLabels", default={}) or {}
    exprs = get(selector, "matchExpressions", default=[]) or []
    if is_unknown(match_labels) or is_unknown(exprs):
        return UNKNOWN
    for key, want in match_labels.items():
        have = labels.get(key)
        if is_unknown(have) or is_unknown(want):
            return UNKNOWN
        if have != want:
            return False
    for expr in exprs:
        key, op = get(expr, "key"), get(expr, "operator")
        values = get(expr, "values", default=[]) or []
        if any(is_unknown(v) for v in (key, op, values, labels.get(key))):
            return UNKNOWN
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes toleration semantics: an empty effect tolerates every effect, `Exists` ignores
    the value and an empty key with `Exists` tolerates every taint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    op = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if op == "Exists":
        return key == "" or key == taint.get("key")
    return key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def by_type(resources: Sequence[Resource], resource_type: str) -> list[Resource]:
    return [r for r in resources if r.type == resource_type]


# Replica bounds of each autoscaler kind: field and value when unset. KEDA scales to zero unless
# minReplicaCount says otherwise; an HPA without maxReplicas is rejected by the API (None here).
_MIN_REPLICAS = {HPA: ("minReplicas", 1), SCALED_OBJECT: ("minReplicaCount", 0)}
_MAX_REPLICAS = {HPA: ("maxReplicas", None), SCALED_OBJECT: ("maxReplicaCount", 100)}
SHORT_KIND = {HPA: "HPA", SCALED_OBJECT: "ScaledObject"}


def min_replicas(autoscaler: Resource) -> tuple[Any, str]:
    """The fewest replicas an HPA or ScaledObject keeps (its default when unset) and its field."""
    field_name, default = _MIN_REPLICAS[autoscaler.type]
    return get(autoscaler.props, "spec", field_name, default=default), field_name


def max_replicas(autoscaler: Resource) -> tuple[Any, str]:
    """The most replicas an HPA or ScaledObject scales to (its default when unset) and its field."""
    field_name, default = _MAX_REPLICAS[autoscaler.type]
    return get(autoscaler.props, "spec", field_name, default=default), field_name


Target = tuple[Any, Any, Any]
"""(namespace, kind, name) of a workload; parts may be UNKNOWN during preview."""


def workload_key(workload: Resource) -> Target:
    return (
        namespace_of(workload.props),
        kind_of(workload.type),
        name_of(workload.props, workload.name),
    )


def scale_target(autoscaler: Resource) -> Target:
    """The workload an HPA or ScaledObject scales, in the autoscaler's namespace. KEDA's
    scaleTargetRef.kind defaults to Deployment; an HPA's is required."""
    ref = get(autoscaler.props, "spec", "scaleTargetRef", default={})
    kind_default = "Deployment" if autoscaler.type == SCALED_OBJECT else None
    return namespace_of(autoscaler.props), get(ref, "kind", default=kind_default), get(ref, "name")


def vpa_target(vpa: Resource) -> Target:
    ref = get(vpa.props, "spec", "targetRef", default={})
    return namespace_of(vpa.props), get(ref, "kind"), get(ref, "name")


@dataclass(frozen=True)
class ResourceSignal:
    """A cpu or memory signal an autoscaler scales on."""

    resource: str
    utilization: bool
    """Target in percent of the pods' requests (needs requests to compute)."""
    container: str | None
    """Only this container's usage counts (HPA ContainerResource, KEDA metadata.containerName);
    None: the sum over the pod's containers."""


def resource_signals(autoscaler: Resource) -> Any:
    """The cpu/memory signals of an HPA (metrics of type Resource or ContainerResource) or a
    ScaledObject (triggers of type cpu or memory); UNKNOWN when one of them is not known yet."""
    if autoscaler.type == HPA:
        entries = get(autoscaler.props, "spec", "metrics", default=[]) or []
    else:
        entries = get(autoscaler.props, "spec", "triggers", default=[]) or []
    if is_unknown(entries) or not isinstance(entries, Sequence):
        return UNKNOWN if is_unknown(entries) else []
    signals = []
    for entry in entries:
        signal = (_hpa_signal if autoscaler.type == HPA else _keda_signal)(entry)
        if is_unknown(signal):
            return UNKNOWN
        if signal is not None:
            signals.append(signal)
    return signals


def _hpa_signal(metric: Any) -> Any:
    kind = get(metric, "type")
    if kind == "Resource":
        source, container = get(metric, "resource"), None
    elif kind == "ContainerResource":
        source = get(metric, "containerResource")
        container = get(source, "container")
    else:
        return UNKNOWN if is_unknown(kind) else None
    name, target = get(source, "name"), get(source, "target", "type")
    if any(is_unknown(v) for v in (name, target, container)):
        return UNKNOWN
    if name not in ("cpu", "memory"):
        return None
    return ResourceSignal(name, target == "Utilization", container)


def _keda_signal(trigger: Any) -> Any:
    kind = get(trigger, "type")
    if is_unknown(kind) or kind not in ("cpu", "memory"):
        return UNKNOWN if is_unknown(kind) else None
    # metadata.type is the pre-2.10 spelling of metricType, still accepted by KEDA.
    metric_type = get(trigger, "metricType")
    if metric_type is None:
        metric_type = get(trigger, "metadata", "type")
    container = get(trigger, "metadata", "containerName") or None
    if is_unknown(metric_type) or is_unknown(container):
        return UNKNOWN
    return ResourceSignal(kind, metric_type == "Utilization", container)


@dataclass
class Index:
    """Lookups stack rules share: the horizontal autoscalers (HPAs and KEDA ScaledObjects) of each
    workload."""

    resources: Sequence[Resource]
    autoscalers_by_target: dict[tuple[str, str, str], list[Resource]] = field(default_factory=dict)
    unresolved: set[Any] = field(default_factory=set)
    """Namespaces (UNKNOWN among them) of autoscalers whose target is not known yet."""

    def __post_init__(self) -> None:
        for autoscaler in (r for r in self.resources if r.type in AUTOSCALERS):
            target = scale_target(autoscaler)
            if any(is_unknown(v) for v in target):
                self.unresolved.add(target[0])
            elif all(isinstance(v, str) for v in target):
                self.autoscalers_by_target.setdefault(target, []).append(autoscaler)

    def autoscalers_of(self, target: Target) -> list[Resource]:
        """Every HPA and ScaledObject known to scale the workload ``target``."""
        if not all(isinstance(v, str) for v in target):
            return []
        return self.autoscalers_by_target.get(target, [])

    def autoscalers_for(self, workload: Resource) -> list[Resource]:
        return self.autoscalers_of(workload_key(workload))

    def maybe_more(self, workload: Resource) -> bool:
        """Whether an autoscaler whose target is not known yet may scale ``workload`` too."""
        ns = namespace_of(workload.props)
        return bool(self.unresolved) and (is_unknown(ns) or bool({ns, UNKNOWN} & self.unresolved))
