"""The platform gateway's controller plan: retries for unreachable backends, and how they are wired
into Traefik (file provider, entry-point middleware, pod template checksum)."""

from __future__ import annotations

import pytest

from mlplatform.config import IngressConfig
from mlplatform.plan import gateway as plan


def ingress(**gateway) -> IngressConfig:
    return IngressConfig(gateway=gateway)


def test_every_route_retries_unreachable_backends_by_default():
    config = plan.dynamic_config(ingress())
    assert config == {
        "http": {
            "middlewares": {
                plan.RETRY_MIDDLEWARE: {"retry": {"attempts": 3, "initialInterval": "50ms"}}
            }
        }
    }
    args = plan.controller_args(ingress(), "svc")
    assert f"--providers.file.filename={plan.DYNAMIC_DIR}/{plan.DYNAMIC_FILE}" in args
    assert f"--entryPoints.web.http.middlewares={plan.RETRY_MIDDLEWARE}@file" in args


def test_tls_listener_retries_too():
    args = plan.controller_args(IngressConfig(tls={"enabled": True}), "svc")
    assert f"--entryPoints.websecure.http.middlewares={plan.RETRY_MIDDLEWARE}@file" in args


def test_one_attempt_turns_retries_off_and_mounts_nothing():
    off = ingress(retryAttempts=1)
    assert plan.dynamic_config(off) is None
    assert not [a for a in plan.controller_args(off, "svc") if "middlewares" in a or "file" in a]
    pod = plan.controller_deployment(off, "gw", "sa", "svc")["template"]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["tmp"]
    assert "annotations" not in pod["metadata"]


def test_the_config_map_is_mounted_where_the_file_provider_reads_and_rolls_the_pods():
    pod = plan.controller_deployment(ingress(), "gw", "sa", "svc", "gw-dynamic")["template"]
    (container,) = pod["spec"]["containers"]
    assert {"name": "dynamic", "mountPath": plan.DYNAMIC_DIR, "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {"name": "dynamic", "configMap": {"name": "gw-dynamic"}} in pod["spec"]["volumes"]
    more = plan.controller_deployment(ingress(retryAttempts=4), "gw", "sa", "svc", "gw-dynamic")
    # another retry configuration is another checksum, so the controller rolls onto it
    assert pod["metadata"]["annotations"] != more["template"]["metadata"]["annotations"], (
        "the checksum must follow the configuration"
    )


def test_retries_without_a_config_map_are_a_programming_error():
    with pytest.raises(ValueError, match="dynamic_config_map"):
        plan.controller_deployment(ingress(), "gw", "sa", "svc")


@pytest.mark.parametrize("attempts", [0, 6])
def test_retry_attempts_out_of_range_are_refused(attempts):
    with pytest.raises(ValueError, match="retryAttempts|retry_attempts"):
        ingress(retryAttempts=attempts)
