"""mlplatform.sdk is the only user of Pulumi SDK internals; this fails when an upgrade moves them.

On a failure after an SDK upgrade: check the private APIs sdk.py uses still behave as below, then
update CHECKED_VERSIONS (and requirements.txt) together.
"""

from __future__ import annotations

import importlib.metadata
import json

import pulumi
import pytest

from mlplatform import sdk


@pytest.mark.parametrize("package", sorted(sdk.CHECKED_VERSIONS))
def test_installed_sdk_is_the_version_the_adapter_was_checked_against(package):
    assert importlib.metadata.version(package) == sdk.CHECKED_VERSIONS[package]


def test_engine_config_and_secret_keys(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"mlplatform:fromEnv": "1"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["mlplatform:fromEnv"]))
    pulumi.runtime.set_all_config(
        {"mlplatform:models": "[]", "mlplatform:grafanaAdminPassword": "pw"},
        ["mlplatform:grafanaAdminPassword"],
    )
    try:
        assert sdk.engine_config() == {
            "mlplatform:fromEnv": "1",
            "mlplatform:models": "[]",
            "mlplatform:grafanaAdminPassword": "pw",
        }
        assert sdk.secret_config_keys() == {
            "mlplatform:fromEnv",
            "mlplatform:grafanaAdminPassword",
        }
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_kubernetes_provider_version_matches_the_sdk():
    assert sdk.kubernetes_provider_version() == sdk.CHECKED_VERSIONS["pulumi-kubernetes"]
