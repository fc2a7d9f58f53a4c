"""The one adapter over Pulumi SDK internals that no public API offers.

`pulumi.Config` reads one key at a time; checking a whole stack (unknown keys, typos, plain-text
secrets) needs the whole bag and the list of secret keys. pulumi-kubernetes pins the provider
plugin version of its typed resources in a private helper, which a raw `CustomResource` of its
type needs too. Both are private modules, so they are touched only here, and
tests/unit/test_sdk.py fails when an SDK upgrade moves them (it names the versions checked).
"""

from __future__ import annotations

from typing import Any

import pulumi.runtime.config as _runtime_config
from pulumi_kubernetes import _utilities as _kubernetes_utilities

# The SDK versions this adapter was written against (requirements.txt pins them).
CHECKED_VERSIONS = {"pulumi": "3.259.0", "pulumi-kubernetes": "4.25.0"}


def engine_config() -> dict[str, Any]:
    """Every config key the engine passed to this program (`ns:key` -> raw value)."""
    merged: dict[str, Any] = dict(_runtime_config.get_config_env())
    merged.update(_runtime_config.CONFIG.get())
    return merged


def secret_config_keys() -> set[str]:
    """The `ns:key` names the engine marked secret."""
    keys = set(_runtime_config.get_config_secret_keys_env())
    keys.update(k for k in engine_config() if _runtime_config.is_config_secret(k))
    return keys


def kubernetes_provider_version() -> str:
    """The kubernetes provider plugin version the installed pulumi-kubernetes SDK asks for."""
    return _kubernetes_utilities.get_version()
