"""The rule table: name, level, kind, function and options of every rule in the pack.

Levels here are the defaults; a `--policy-pack-config` file overrides them per rule
(`{"probes": "advisory"}` or `{"gpu-capacity": {"enforcementLevel": "mandatory", ...}}`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from . import rules_autoscaling as scaling
from . import rules_availability as avail
from . import rules_gpu as gpu
from . import rules_workload as wl
from .config import (
    GpuPoolsConfig,
    ImageTagConfig,
    NoConfig,
    PdbConfig,
    ProbesConfig,
    ResourcesConfig,
    RuleConfig,
    SecretEnvConfig,
    WorkloadConfig,
)

Level = Literal["mandatory", "advisory", "disabled"]


@dataclass(frozen=True)
class Rule:
    """One policy: `resource` rules see one object at a time, `stack` rules the whole stack."""

    name: str
    kind: Literal["resource", "stack"]
    check: Callable[..., list]
    config: type[RuleConfig]
    level: Level
    severity: Literal["low", "medium", "high", "critical"]

    @property
    def description(self) -> str:
        doc = self.check.__doc__ or self.name
        return " ".join(doc.split())


RULES: tuple[Rule, ...] = (
    Rule(
        "container-resources",
        "resource",
        wl.check_container_resources,
        ResourcesConfig,
        "mandatory",
        "high",
    ),
    Rule(
        "immutable-image-tags",
        "resource",
        wl.check_immutable_image_tags,
        ImageTagConfig,
        "mandatory",
        "high",
    ),
    Rule("probes", "resource", wl.check_probes, ProbesConfig, "mandatory", "medium"),
    Rule("non-root", "resource", wl.check_non_root, WorkloadConfig, "mandatory", "high"),
    Rule(
        "pod-security-restricted",
        "resource",
        wl.check_restricted_extras,
        WorkloadConfig,
        "advisory",
        "medium",
    ),
    Rule(
        "no-plain-secrets-in-env",
        "resource",
        wl.check_no_plain_secrets,
        SecretEnvConfig,
        "mandatory",
        "critical",
    ),
    Rule("gpu-toleration", "stack", gpu.check_gpu_tolerations, GpuPoolsConfig, "mandatory", "high"),
    Rule("gpu-capacity", "stack", gpu.check_gpu_capacity, GpuPoolsConfig, "mandatory", "high"),
    Rule(
        "gpu-pool-oversubscribed",
        "stack",
        gpu.check_gpu_pool_oversubscription,
        GpuPoolsConfig,
        "advisory",
        "medium",
    ),
    Rule(
        "cpu-pods-off-gpu-nodes",
        "stack",
        gpu.check_cpu_pods_off_gpu_nodes,
        GpuPoolsConfig,
        "advisory",
        "medium",
    ),
    Rule("pdb-required", "stack", avail.check_pdb, PdbConfig, "mandatory", "high"),
    Rule("hpa-target-valid", "stack", avail.check_hpa_targets, NoConfig, "advisory", "medium"),
    Rule(
        "one-autoscaler-per-workload",
        "stack",
        scaling.check_one_autoscaler,
        NoConfig,
        "mandatory",
        "high",
    ),
    Rule(
        "vpa-disjoint-from-autoscaler",
        "stack",
        scaling.check_vpa_disjoint,
        NoConfig,
        "mandatory",
        "high",
    ),
    Rule(
        "network-policy-per-namespace",
        "stack",
        avail.check_network_policies,
        NoConfig,
        "mandatory",
        "high",
    ),
)
