"""The loader: Pulumi config in, one validated StackConfig (or one ConfigError) out.

It sits above the config models and the pure plans: it decodes what the engine passed, validates
single values (`mlplatform.config`), runs the cross-checks (`mlplatform.plan.checks`) and reports
every problem at once, before any resource is registered. Secrets are read here too, as secret
Outputs, never as plain config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pydantic import ValidationError

from mlplatform import sdk
from mlplatform.config import SECRET_KEYS, StackConfig, top_level_keys
from mlplatform.config.errors import CONFIG_NAMESPACE, ConfigError, ConfigIssue, not_set
from mlplatform.config.issues import issues_from_validation_error, unknown_key_issues
from mlplatform.plan.checks import cross_check
from mlplatform.sources import (
    GATEWAY_CRDS_ENV,
    KEDA_CRDS_ENV,
    KEDA_RBAC_ENV,
    VPA_CRDS_ENV,
    VPA_RBAC_ENV,
    addon_manifests,
    gateway_crd_files,
    read_model_folders,
)

__all__ = [
    "StackSecrets",
    "load_stack_config",
    "load_stack_file",
    "parse_stack_config",
    "read_secrets",
]


def parse_stack_config(
    raw: Mapping[str, Any],
    stack: str,
    project_root: Path | None = None,
    secret_keys: Collection[str] = (),
) -> StackConfig:
    """Validate raw config values into a StackConfig, or raise one ConfigError listing every issue.

    `raw` maps keys (with or without the `mlplatform:` prefix; other namespaces are ignored) to
    decoded values, as in a `Pulumi.<stack>.yaml` `config:` block, where a secret is an object
    `{secure: ...}`; `secret_keys` names the keys the engine marked secret. With `project_root`,
    model sources are checked to exist as `models/<source>/Dockerfile` under it.
    """
    data: dict[str, Any] = {}
    unknown: list[str] = []
    issues: list[ConfigIssue] = []
    known = top_level_keys()
    for key, value in raw.items():
        namespace, _, short = key.rpartition(":")
        if namespace and namespace != CONFIG_NAMESPACE:
            continue
        if short in SECRET_KEYS:
            if not _is_secret(value) and f"{CONFIG_NAMESPACE}:{short}" not in secret_keys:
                issues.append(_plain_secret_issue(stack, short))
            continue
        if short not in known:
            unknown.append(short)
            continue
        data[short] = value
    issues.extend(unknown_key_issues(stack, unknown, raw))
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as error:
        issues.extend(issues_from_validation_error(stack, error, data))
        raise ConfigError(stack, issues) from None
    folders = read_model_folders(project_root / "models") if project_root is not None else None
    issues.extend(cross_check(config, stack, folders))
    if issues:
        raise ConfigError(stack, issues)
    return config


def _is_secret(value: Any) -> bool:
    """A stack file's encrypted value: `{secure: <ciphertext>}`."""
    return isinstance(value, Mapping) and set(value) == {"secure"}


def _plain_secret_issue(stack: str, key: str) -> ConfigIssue:
    return ConfigIssue(
        path=f"{CONFIG_NAMESPACE}:{key}",
        value="(set in plain text; not shown)",
        problem=f"{key} is a secret ({SECRET_KEYS[key]}) but is stored unencrypted in the "
        "stack's config, so it would be readable in the stack file",
        allowed="a secret value (pulumi config set --secret)",
        fix=f"pulumi config set --stack {stack} --secret {CONFIG_NAMESPACE}:{key} <value>",
    )


def decode_config_value(value: Any) -> Any:
    """Pulumi hands object and list config to programs as JSON text; plain strings stay strings."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def runtime_config() -> dict[str, Any]:
    """Every `mlplatform:*` key the Pulumi engine passed to this program, decoded."""
    return {
        key: decode_config_value(value)
        for key, value in sdk.engine_config().items()
        if key.startswith(CONFIG_NAMESPACE + ":")
    }


def load_stack_config(project_root: Path | None = None) -> StackConfig:
    """Read and validate this stack's configuration once; raises ConfigError when it is invalid.

    Beyond `parse_stack_config`, it checks what the config needs from this machine (files named
    by config or environment)."""
    stack = pulumi.get_stack()
    config = parse_stack_config(
        runtime_config(), stack, project_root, secret_keys=sdk.secret_config_keys()
    )
    issues = environment_issues(config, stack, os.environ)
    if issues:
        raise ConfigError(stack, issues)
    return config


def environment_issues(
    config: StackConfig, stack: str, environ: Mapping[str, str]
) -> list[ConfigIssue]:
    """What the config needs from the machine the program runs on and cannot find."""
    ingress, issues = config.ingress, []
    gateway = ingress.gateway
    wants_crds = ingress.deploys_gateway
    if wants_crds and gateway.install_crds and gateway_crd_files(gateway, environ) is None:
        where = gateway.crds_path or environ.get(GATEWAY_CRDS_ENV)
        missing = where or f"neither the key nor ${GATEWAY_CRDS_ENV} is set"
        issues.append(
            ConfigIssue(
                path=f"{CONFIG_NAMESPACE}:ingress.gateway.crdsPath",
                value=gateway.crds_path if gateway.crds_path else not_set(),
                problem=f"the Gateway API CRDs to install are not there ({missing})",
                allowed="a YAML file or a folder of YAML files holding the Gateway API CRDs",
                fix="run `scripts/bootstrap.sh gateway` (it copies them from the pinned module and "
                f"scripts/env.sh sets ${GATEWAY_CRDS_ENV}), or set "
                f"{CONFIG_NAMESPACE}:ingress.gateway.installCrds false where the cluster has them",
            )
        )
    addons = config.autoscalers
    for name, addon, crds_env, rbac_env in (
        ("keda", addons.keda, KEDA_CRDS_ENV, KEDA_RBAC_ENV),
        ("vpa", addons.vpa, VPA_CRDS_ENV, VPA_RBAC_ENV),
    ):
        if addon.deploy and addon_manifests(addon.crds_path, crds_env, rbac_env, environ) is None:
            where = addon.crds_path or environ.get(crds_env) or f"${crds_env} is not set"
            issues.append(
                ConfigIssue(
                    path=f"{CONFIG_NAMESPACE}:autoscalers.{name}.crdsPath",
                    value=addon.crds_path if addon.crds_path else not_set(),
                    problem=f"the {name.upper()} CRDs or RBAC manifests to install are not there "
                    f"(CRDs: {where}; RBAC: {environ.get(rbac_env) or f'${rbac_env} is not set'})",
                    allowed=f"a YAML file or a folder of them holding the {name.upper()} CRDs",
                    fix="run `scripts/bootstrap.sh autoscalers` (it copies them from the pinned "
                    f"module and scripts/env.sh sets ${crds_env} and ${rbac_env}), or set "
                    f"{CONFIG_NAMESPACE}:autoscalers.{name}.deploy false where the cluster runs "
                    f"{name.upper()} already",
                )
            )
    return issues


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values; Outputs marked secret, so they never reach state in plain text."""

    registry_password: Any = None
    grafana_admin_password: Any = None


def read_secrets(config: StackConfig) -> StackSecrets:
    """Read the secret keys this config needs (registryPassword if registry.username)."""
    bag = pulumi.Config(CONFIG_NAMESPACE)
    registry_password = None
    if config.registry.username is not None:
        try:
            registry_password = bag.require_secret("registryPassword")
        except pulumi.ConfigMissingError:
            stack = pulumi.get_stack()
            raise ConfigError(
                stack,
                [
                    ConfigIssue(
                        path="mlplatform:registryPassword",
                        value=not_set(),
                        problem=f"registry.username is {config.registry.username!r} "
                        "but no password is set",
                        allowed="a secret string",
                        fix=f"pulumi config set --stack {stack} --secret "
                        "mlplatform:registryPassword",
                    )
                ],
            ) from None
    return StackSecrets(
        registry_password=registry_password,
        grafana_admin_password=bag.get_secret("grafanaAdminPassword"),
    )


def load_stack_file(
    path: Path, stack: str | None = None, project_root: Path | None = None
) -> StackConfig:
    """Validate a `Pulumi.<stack>.yaml` file directly (tests, CI lint, other tools)."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    name = stack or Path(path).name.removeprefix("Pulumi.").removesuffix(".yaml")
    return parse_stack_config(document.get("config") or {}, name, project_root)
