"""Typed configuration of the rules, read from the `--policy-pack-config` JSON file.

Each rule takes one model; the file holds, per rule name, an object with `enforcementLevel`
(advisory | mandatory | disabled) plus that model's fields in camelCase. The same models give the
engine its JSON schema, so one definition sets defaults, documents them and validates them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator
from pydantic.alias_generators import to_camel


class RuleConfig(BaseModel):
    """Base of every rule's options: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class NoConfig(RuleConfig):
    """The rule has no options; only `enforcementLevel` may be set for it."""


class WorkloadConfig(RuleConfig):
    """Options every per-workload rule shares."""

    exempt_namespaces: tuple[str, ...] = ("kube-system",)
    """Namespaces whose workloads the rule skips: node agents there (device plugins, CNI) need
    root and host paths and often ship without probes or limits. Default ["kube-system"];
    [] checks every namespace."""


class ResourcesConfig(WorkloadConfig):
    required_resources: tuple[str, ...] = ("cpu", "memory")
    """Resource names that every container must both request and limit.
    Default ["cpu", "memory"]; any Kubernetes resource name (e.g. "ephemeral-storage")."""


class ImageTagConfig(WorkloadConfig):
    mutable_tags: tuple[str, ...] = ("latest",)
    """Tags treated as mutable in addition to a missing tag (which means `latest`). Default
    ["latest"]; digests (`@sha256:...`) and content-hash tags always pass."""


class ProbesConfig(WorkloadConfig):
    required_probes: tuple[Literal["readinessProbe", "livenessProbe", "startupProbe"], ...] = (
        "readinessProbe",
        "livenessProbe",
    )
    """Probes every container of a long-running workload must define. Default
    ["readinessProbe", "livenessProbe"]; allowed: readinessProbe, livenessProbe, startupProbe."""


_DEFAULT_SECRET_PATTERNS = (
    r"(^|_)(PASSWORD|PASSWD|PASSPHRASE|TOKEN|SECRET|CREDENTIALS?|APIKEY)(_|$)",
    r"(^|_)(API|ACCESS|PRIVATE|SECRET|SIGNING|ENCRYPTION|CLIENT)_KEY(_|$)",
    r"(^|_)KEY$",
)


class SecretEnvConfig(WorkloadConfig):
    secret_name_patterns: tuple[str, ...] = _DEFAULT_SECRET_PATTERNS
    """Regular expressions (matched case-insensitively against env var names) that mark a
    variable as secret; such a variable must use `valueFrom.secretKeyRef`, never `value`.
    Default: names with a PASSWORD/TOKEN/SECRET/CREDENTIALS/APIKEY segment or ending in KEY."""

    allowed_names: tuple[str, ...] = ()
    """Env var names exempt from the rule because they match a pattern but hold no secret
    (e.g. "CACHE_KEY"). Default []."""

    @field_validator("secret_name_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"{p!r} is not a valid regular expression ({e})") from e
        return patterns


class GpuPoolsConfig(RuleConfig):
    external_pools: dict[str, PositiveInt] = Field(default_factory=dict)
    """GPU pools whose nodes this stack does not create (GpuNodePool backend `existing`):
    pool name -> total `nvidia.com/gpu` across its nodes. Their nodes carry the taint
    `nvidia.com/gpu=<pool>:NoSchedule`. Default {}; counts must be >= 1."""


class PdbConfig(RuleConfig):
    exempt: tuple[str, ...] = ()
    """Workloads that need no PodDisruptionBudget, as "namespace/name" (e.g. a stateless
    proxy you accept losing during drains). Default []."""

    @field_validator("exempt")
    @classmethod
    def _namespaced(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for n in names:
            if n.count("/") != 1 or "" in n.split("/"):
                raise ValueError(f"{n!r} must be written as 'namespace/name'")
        return names


class PolicyConfigError(ValueError):
    """A rule's `--policy-pack-config` entry is invalid; the message says where and how to fix."""

    def __init__(self, rule: str, model: type[RuleConfig], error: ValidationError) -> None:
        lines = [f"invalid configuration for policy '{rule}':"]
        for err in error.errors():
            path = ".".join(str(p) for p in err["loc"]) or "(root)"
            field = model.model_fields.get(_field_name(model, err["loc"]))
            allowed = (
                f" Allowed: {' '.join(field.description.split())}"
                if field and field.description
                else ""
            )
            if err["type"] == "extra_forbidden":
                known = ", ".join(sorted(f.alias or n for n, f in model.model_fields.items()))
                allowed = f" Known keys: {known or 'none besides enforcementLevel'}."
            lines.append(f"  {rule}.{path} = {err['input']!r}: {err['msg']}.{allowed}")
        lines.append(
            f"Fix the '{rule}' entry in the JSON file passed with --policy-pack-config "
            "(see docs/policy.md)."
        )
        self.rule = rule
        super().__init__("\n".join(lines))


def _field_name(model: type[RuleConfig], loc: tuple[Any, ...]) -> str:
    if not loc:
        return ""
    head = str(loc[0])
    for name, f in model.model_fields.items():
        if head in (name, f.alias):
            return name
    return head


def parse_config(rule: str, model: type[RuleConfig], raw: Mapping[str, Any] | None) -> RuleConfig:
    """Validates one rule's options; the engine's `enforcementLevel` key is not an option."""
    data = {k: v for k, v in (raw or {}).items() if k != "enforcementLevel"}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise PolicyConfigError(rule, model, e) from None


def json_schema_properties(model: type[RuleConfig]) -> dict[str, dict[str, Any]]:
    """Per-option JSON schema the engine checks the config file against (no $refs: the engine
    validates each property on its own)."""
    schema = model.model_json_schema(by_alias=True)
    assert "$defs" not in schema, f"{model.__name__} must stay flat for the engine's schema"
    props = schema.get("properties", {})
    for p in props.values():
        p.pop("title", None)
    return props
