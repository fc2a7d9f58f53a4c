"""Wiring between pulumi-policy and the plain rule functions.

The engine hands over props wrapped in proxies that raise on values unknown during preview; the
rules want plain dicts and lists with ``UNKNOWN`` in those places, so ``to_plain`` unwraps them.
This is the only module that imports pulumi_policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy as _proxy

from .config import json_schema_properties, parse_config
from .k8s import UNKNOWN, Resource
from .registry import RULES, Rule

PACK_NAME = "mlplatform"

_SENTINELS = frozenset(
    {
        _proxy.UNKNOWN_BOOLEAN_VALUE,
        _proxy.UNKNOWN_NUMBER_VALUE,
        _proxy.UNKNOWN_STRING_VALUE,
        _proxy.UNKNOWN_ARRAY_VALUE,
        _proxy.UNKNOWN_ASSET_VALUE,
        _proxy.UNKNOWN_ARCHIVE_VALUE,
        _proxy.UNKNOWN_OBJECT_VALUE,
    }
)
_PROXIES = (_proxy._DictProxy, _proxy._ListProxy)  # pylint: disable=protected-access


def to_plain(value: Any) -> Any:
    """Deep copy of engine props as dicts/lists, with unknown-during-preview values as UNKNOWN.
    Reading a proxy's items would raise on unknowns, so its wrapped container is read instead."""
    if isinstance(value, _PROXIES):
        value = value["__target"]
    if isinstance(value, str):
        return UNKNOWN if value in _SENTINELS else value
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [to_plain(v) for v in value]
    return value


def _resource_validation(rule: Rule):
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        config = parse_config(rule.name, rule.config, args.get_config())
        for message in rule.check(args.resource_type, to_plain(args.props), config):
            report(message, None)

    return validate


def _stack_validation(rule: Rule):
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        config = parse_config(rule.name, rule.config, args.get_config())
        resources = [
            Resource(r.resource_type, to_plain(r.props), r.urn, r.name) for r in args.resources
        ]
        for violation in rule.check(resources, config):
            report(violation.message, violation.urn or None)

    return validate


def build_policies() -> list[Policy]:
    policies: list[Policy] = []
    for rule in RULES:
        props = json_schema_properties(rule.config)
        common = dict(
            name=rule.name,
            description=rule.description,
            enforcement_level=EnforcementLevel(rule.level),
            config_schema=PolicyConfigSchema(props) if props else None,
            severity=Severity(rule.severity),
        )
        if rule.kind == "resource":
            policies.append(ResourceValidationPolicy(validate=_resource_validation(rule), **common))
        else:
            policies.append(StackValidationPolicy(validate=_stack_validation(rule), **common))
    return policies


def serve() -> None:
    """Starts the analyzer the engine talks to; blocks until the engine stops it."""
    PolicyPack(
        name=PACK_NAME, policies=build_policies(), enforcement_level=EnforcementLevel.ADVISORY
    )
