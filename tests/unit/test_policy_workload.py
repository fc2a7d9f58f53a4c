"""Per-workload policy rules, called directly on Kubernetes objects (no engine, no mocks)."""

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))

from mlpolicy import examples as ex  # noqa: E402
from mlpolicy.config import ImageTagConfig, ProbesConfig, ResourcesConfig, SecretEnvConfig  # noqa: E402
from mlpolicy.k8s import UNKNOWN  # noqa: E402
from mlpolicy.rules_workload import (  # noqa: E402
    check_container_resources,
    check_immutable_image_tags,
    check_no_plain_secrets,
    check_non_root,
    check_probes,
    check_restricted_extras,
    image_tag_problem,
)

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
CRONJOB = "kubernetes:batch/v1:CronJob"
SHA = "sha256:" + "ab" * 32


def deployment_with(**container_changes):
    d = ex.deployment("iris")
    c = d["spec"]["template"]["spec"]["containers"][0]
    for key, value in container_changes.items():
        if value is None:
            c.pop(key, None)
        else:
            c[key] = value
    return d


def job(pod_spec):
    return {
        "metadata": {"name": "train", "namespace": "models"},
        "spec": {"template": {"metadata": {}, "spec": pod_spec}},
    }


# --- container-resources ---------------------------------------------------------------------


def test_missing_memory_limit_names_container_path_and_fix():
    d = deployment_with()
    del d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    [msg] = check_container_resources(DEPLOYMENT, d)
    assert "Deployment 'models/iris' container 'model-server'" in msg
    assert "spec.template.spec.containers[0].resources.limits has no memory" in msg
    assert "requests and limits for cpu, memory" in msg


def test_no_resources_at_all_reports_requests_and_limits():
    msgs = check_container_resources(DEPLOYMENT, deployment_with(resources=None))
    assert len(msgs) == 2
    assert "resources.requests has no cpu, memory" in msgs[0]
    assert "resources.limits has no cpu, memory" in msgs[1]


def test_init_containers_and_cronjob_templates_are_checked():
    spec = ex.pod_spec("iris")
    spec["initContainers"] = [{"name": "fetch", "image": "busybox@" + SHA}]
    cron = {
        "metadata": {"name": "nightly", "namespace": "models"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}},
    }
    msgs = check_container_resources(CRONJOB, cron)
    assert msgs and all("init container 'fetch'" in m for m in msgs)
    assert "spec.jobTemplate.spec.template.spec.initContainers[0]" in msgs[0]


def test_request_above_limit_and_gpu_request_unequal_to_limit():
    d = deployment_with()
    res = d["spec"]["template"]["spec"]["containers"][0]["resources"]
    res["requests"]["memory"] = "1Gi"  # limit is 512Mi
    res["requests"]["nvidia.com/gpu"] = 1
    res["limits"]["nvidia.com/gpu"] = 2
    msgs = check_container_resources(DEPLOYMENT, d)
    assert any("requests.memory = 1Gi exceeds resources.limits.memory = 512Mi" in m for m in msgs)
    assert any("nvidia.com/gpu request 1 differs from its limit 2" in m for m in msgs)


def test_required_resources_are_configurable():
    cfg = ResourcesConfig(required_resources=("cpu", "memory", "ephemeral-storage"))
    msgs = check_container_resources(DEPLOYMENT, ex.deployment("iris"), cfg)
    assert len(msgs) == 2 and all("ephemeral-storage" in m for m in msgs)


def test_unknown_resources_and_non_workloads_are_not_judged():
    assert check_container_resources(DEPLOYMENT, deployment_with(resources=UNKNOWN)) == []
    assert check_container_resources("kubernetes:core/v1:Service", {"spec": {}}) == []
    d = ex.deployment("iris")
    d["spec"]["template"]["spec"] = UNKNOWN
    assert check_container_resources(DEPLOYMENT, d) == []


# --- immutable-image-tags ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, problem",
    [
        ("python", "without a tag"),
        ("registry.local:5000/mlplatform/iris", "without a tag"),
        ("mlplatform/iris:latest", "mutable tag ':latest'"),
        ("iris@sha256:zz", "malformed digest"),
        ("", "has no image"),
    ],
)
def test_mutable_or_missing_image_references(image, problem):
    assert problem in image_tag_problem(image, ("latest",))


@pytest.mark.parametrize(
    "image",
    [
        "registry.local:5000/mlplatform/iris:3f2a9c1d7b4e",
        "iris@" + SHA,
        "iris:latest@" + SHA,  # the digest pins it whatever the tag says
    ],
)
def test_pinned_image_references(image):
    assert image_tag_problem(image, ("latest",)) is None


def test_image_rule_message_and_configured_mutable_tags():
    [msg] = check_immutable_image_tags(DEPLOYMENT, deployment_with(image="iris:latest"))
    assert "container 'model-server' uses the mutable tag ':latest'" in msg
    assert "spec.template.spec.containers[0].image" in msg and "digest" in msg
    stable = deployment_with(image="iris:stable")
    assert check_immutable_image_tags(DEPLOYMENT, stable) == []
    assert check_immutable_image_tags(
        DEPLOYMENT, stable, ImageTagConfig(mutable_tags=("latest", "stable"))
    )


def test_image_built_during_the_update_is_not_judged_in_preview():
    assert check_immutable_image_tags(DEPLOYMENT, deployment_with(image=UNKNOWN)) == []


# --- probes --------------------------------------------------------------------------------------


def test_missing_readiness_probe_is_reported_with_fix():
    [msg] = check_probes(DEPLOYMENT, deployment_with(readinessProbe=None))
    assert "container 'model-server' has no readinessProbe" in msg
    assert "/v2/health/ready" in msg


def test_jobs_and_init_containers_need_no_probes():
    spec = ex.pod_spec("iris")
    del spec["containers"][0]["readinessProbe"], spec["containers"][0]["livenessProbe"]
    assert check_probes(JOB, job(spec)) == []
    d = ex.deployment("iris")
    d["spec"]["template"]["spec"]["initContainers"] = [{"name": "fetch", "image": "x@" + SHA}]
    assert check_probes(DEPLOYMENT, d) == []


def test_startup_probe_can_be_required():
    msgs = check_probes(
        DEPLOYMENT, ex.deployment("iris"), ProbesConfig(required_probes=("startupProbe",))
    )
    assert len(msgs) == 1 and "has no startupProbe" in msgs[0]


# --- non-root --------------------------------------------------------------------------------


def test_container_may_not_override_pod_run_as_non_root():
    d = deployment_with()
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = False
    [msg] = check_non_root(DEPLOYMENT, d)
    assert "runAsNonRoot is False" in msg and "must be true" in msg


def test_missing_run_as_non_root_root_uid_and_escalation():
    d = deployment_with(securityContext={"runAsUser": 0})
    d["spec"]["template"]["spec"]["securityContext"] = {}
    msgs = check_non_root(DEPLOYMENT, d)
    assert any("runAsNonRoot is None" in m for m in msgs)
    assert any("runAsUser is 0 (root)" in m for m in msgs)
    assert any("allowPrivilegeEscalation is None; it must be false" in m for m in msgs)


def test_privileged_container_is_reported():
    d = deployment_with()
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    [msg] = check_non_root(DEPLOYMENT, d)
    assert "privileged is true" in msg


def test_run_as_non_root_on_the_container_alone_is_enough():
    d = deployment_with(securityContext={"runAsNonRoot": True, "allowPrivilegeEscalation": False})
    d["spec"]["template"]["spec"]["securityContext"] = {}
    assert check_non_root(DEPLOYMENT, d) == []


# --- pod-security-restricted ---------------------------------------------------------------------


def test_restricted_profile_gaps_are_each_reported():
    d = deployment_with(
        securityContext={
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["SYS_ADMIN"]},
            "seccompProfile": {"type": "Unconfined"},
        }
    )
    d["spec"]["template"]["spec"]["hostNetwork"] = True
    d["spec"]["template"]["spec"]["volumes"] = [
        {"name": "docker", "hostPath": {"path": "/var/run"}}
    ]
    msgs = "\n".join(check_restricted_extras(DEPLOYMENT, d))
    for expected in (
        "hostNetwork is true",
        "volume 'docker' is a hostPath",
        "capabilities.drop must include 'ALL'",
        "capabilities.add has ['SYS_ADMIN']",
        "seccompProfile.type is 'Unconfined'",
    ):
        assert expected in msgs


# --- no-plain-secrets-in-env ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["API_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "HF_API_KEY", "KEY"]
)
def test_secret_looking_names_with_literal_values_are_reported_without_the_value(name):
    d = deployment_with(env=[{"name": name, "value": "hunter2"}])
    [msg] = check_no_plain_secrets(DEPLOYMENT, d)
    assert f"env var '{name}'" in msg and "secretKeyRef" in msg
    assert "hunter2" not in msg


@pytest.mark.parametrize(
    "env",
    [
        [{"name": "MODEL_NAME", "value": "iris"}, {"name": "KEYBOARD_LAYOUT", "value": "us"}],
        [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}],
        [{"name": "API_TOKEN", "value": ""}],
    ],
)
def test_harmless_env_passes(env):
    assert check_no_plain_secrets(DEPLOYMENT, deployment_with(env=env)) == []


def test_unknown_literal_is_still_a_literal_and_allowed_names_exempt():
    d = deployment_with(
        env=[{"name": "API_TOKEN", "value": UNKNOWN}, {"name": "CACHE_KEY", "value": "v1"}]
    )
    assert len(check_no_plain_secrets(DEPLOYMENT, d)) == 2
    only_token = check_no_plain_secrets(
        DEPLOYMENT, d, SecretEnvConfig(allowed_names=("CACHE_KEY",))
    )
    assert len(only_token) == 1 and "API_TOKEN" in only_token[0]


def test_rules_do_not_mutate_their_input():
    d = deployment_with(image="iris:latest", env=[{"name": "TOKEN", "value": "x"}])
    before = copy.deepcopy(d)
    for check in (
        check_container_resources,
        check_immutable_image_tags,
        check_probes,
        check_non_root,
        check_restricted_extras,
        check_no_plain_secrets,
    ):
        check(DEPLOYMENT, d)
    assert d == before


def device_plugin(namespace):
    """A node agent as the GPU pool's `existing` backend deploys it: root, hostPath, no probes."""
    return {
        "metadata": {"name": "nvidia-device-plugin-a100", "namespace": namespace},
        "spec": {
            "template": {
                "metadata": {},
                "spec": {
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "value": "a100", "effect": "NoSchedule"}
                    ],
                    "containers": [
                        {
                            "name": "plugin",
                            "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.1",
                            "securityContext": {"allowPrivilegeEscalation": False},
                        }
                    ],
                    "volumes": [
                        {"name": "dp", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}
                    ],
                },
            }
        },
    }


def test_node_agents_in_kube_system_are_exempt_by_default_and_checked_on_request():
    ds = "kubernetes:apps/v1:DaemonSet"
    checks = (check_container_resources, check_probes, check_non_root, check_restricted_extras)
    assert all(check(ds, device_plugin("kube-system")) == [] for check in checks)
    assert all(check(ds, device_plugin("gpu-agents")) for check in checks)
    everywhere = ResourcesConfig(exempt_namespaces=())
    assert check_container_resources(ds, device_plugin("kube-system"), everywhere)
