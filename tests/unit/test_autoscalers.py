"""Autoscaling add-ons (KEDA) and the autoscaler each model gets, under Pulumi mocks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlplatform.autoscalers import ClusterAutoscalers, ClusterAutoscalersArgs
from mlplatform.config import AutoscalersConfig, AutoscalingConfig, ModelConfig, SignalsConfig
from mlplatform.loader import environment_issues, parse_stack_config
from mlplatform.model_service import MLModelService, MLModelServiceArgs
from mlplatform.plan.addons import keda_workloads, retarget_namespace
from mlplatform.plan.autoscaling import KEDA_TRANSFER_HPA
from mlplatform.sources import AddonManifests, addon_manifests
from pulumi_harness import run_program

ADDRESS = "http://monitoring-prometheus.monitoring.svc:9090"


def model() -> ModelConfig:
    return ModelConfig(name="iris", framework="sklearn")


def in_flight() -> AutoscalingConfig:
    return AutoscalingConfig(min_replicas=2, max_replicas=5, signals=SignalsConfig(in_flight=3))


def test_a_prometheus_signal_gives_a_scaled_object_and_no_hpa():
    args = MLModelServiceArgs(
        model=model(),
        namespace="ml",
        image="img:1",
        autoscaling=in_flight(),
        prometheus_address=ADDRESS,
    )
    graph = run_program(lambda: MLModelService("iris", args))
    kinds = {r.type.rsplit(":", 1)[-1] for r in graph.children_of(graph.named("iris"))}
    assert "ScaledObject" in kinds and "HorizontalPodAutoscaler" not in kinds
    scaled = graph.named("iris-scaledobject").inputs
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["metadata"]["annotations"] == {KEDA_TRANSFER_HPA: "true"}
    # KEDA's HPA takes the name the plain HPA had, so switching kinds keeps the live scale
    assert scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "iris"
    (trigger,) = scaled["spec"]["triggers"]
    assert 'namespace="ml"' in trigger["metadata"]["query"]
    assert trigger["metadata"]["serverAddress"] == ADDRESS


def test_a_prometheus_signal_without_an_address_is_refused():
    with pytest.raises(ValueError, match="pass prometheus_address"):
        MLModelServiceArgs(model=model(), namespace="ml", image="img:1", autoscaling=in_flight())


def _manifests(tmp_path: Path) -> AddonManifests:
    crds = tmp_path / "crds.yaml"
    crds.write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n")
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": "keda-auth-reader", "namespace": "kube-system"},
                    "subjects": [
                        {"kind": "ServiceAccount", "name": "keda-operator", "namespace": "keda"}
                    ],
                },
                {
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
                    "spec": {"service": {"name": "keda-metrics-apiserver", "namespace": "keda"}},
                },
            ]
        )
    )
    return AddonManifests([crds], [rbac])


def test_keda_installs_crds_upstream_rbac_moved_to_its_namespace_and_three_workloads(tmp_path):
    config = AutoscalersConfig.model_validate({"keda": {"deploy": True, "namespace": "autoscale"}})
    args = ClusterAutoscalersArgs(config=config, keda_manifests=_manifests(tmp_path))
    graph = run_program(lambda: ClusterAutoscalers("scalers", args))
    names = sorted(r.name for r in graph.children_of(graph.named("scalers")))
    assert names == [
        "scalers-keda-admission-webhooks",
        "scalers-keda-admission-webhooks-service",
        "scalers-keda-crds",
        "scalers-keda-metrics-apiserver",
        "scalers-keda-metrics-apiserver-service",
        "scalers-keda-namespace",
        "scalers-keda-operator",
        "scalers-keda-operator-service",
        "scalers-keda-rbac",
        "scalers-keda-registration",
        "scalers-keda-sa",
    ]
    (binding,) = graph.named("scalers-keda-rbac").inputs["objs"]
    assert binding["metadata"]["namespace"] == "kube-system"  # must stay where its Role is
    assert binding["subjects"][0]["namespace"] == "autoscale"
    (api,) = graph.named("scalers-keda-registration").inputs["objs"]
    assert api["spec"]["service"]["namespace"] == "autoscale"
    operator = graph.named("scalers-keda-operator").inputs
    assert operator["metadata"]["namespace"] == "autoscale"
    assert (
        "--enable-cert-rotation=true"
        in operator["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_nothing_is_installed_unless_asked():
    graph = run_program(
        lambda: ClusterAutoscalers("scalers", ClusterAutoscalersArgs(config=AutoscalersConfig()))
    )
    assert graph.children_of(graph.named("scalers")) == []


def test_deploying_keda_needs_its_manifests():
    with pytest.raises(ValueError, match="keda_manifests is None"):
        ClusterAutoscalersArgs(config=AutoscalersConfig.model_validate({"keda": {"deploy": True}}))


def test_keda_workloads_run_unprivileged_with_read_only_roots():
    config = AutoscalersConfig().keda
    for workload in keda_workloads(config):
        pod = workload.deployment["template"]["spec"]
        container = pod["containers"][0]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["readinessProbe"] and container["livenessProbe"]


def test_retarget_moves_only_the_upstream_namespace():
    webhook = {
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "keda-admission"},
        "webhooks": [{"clientConfig": {"service": {"name": "w", "namespace": "keda"}}}],
    }
    moved = retarget_namespace(webhook, "keda", "scaling")
    assert moved["webhooks"][0]["clientConfig"]["service"]["namespace"] == "scaling"
    assert retarget_namespace({"metadata": {"namespace": "other"}}, "keda", "x") == {
        "metadata": {"namespace": "other"}
    }


def test_missing_addon_manifests_are_a_config_issue_naming_the_bootstrap_step(tmp_path):
    raw = {
        "mlplatform:models": [{"name": "iris", "framework": "sklearn"}],
        "mlplatform:autoscalers": {"keda": {"deploy": True}},
    }
    config = parse_stack_config(raw, "dev")

    def keda_issues(environ):
        issues = environment_issues(config, "dev", environ)
        return [i for i in issues if i.path.startswith("mlplatform:autoscalers")]

    (issue,) = keda_issues({"MLP_KEDA_CRDS": str(tmp_path / "none")})
    assert issue.path == "mlplatform:autoscalers.keda.crdsPath"
    assert "scripts/bootstrap.sh autoscalers" in issue.fix
    manifests = _manifests(tmp_path)
    environ = {"MLP_KEDA_CRDS": str(manifests.crds[0]), "MLP_KEDA_RBAC": str(tmp_path)}
    assert keda_issues(environ) == []
    assert addon_manifests(None, "MLP_KEDA_CRDS", "MLP_KEDA_RBAC", environ) is not None


def test_vpa_runs_in_kube_system_with_a_webhook_the_stack_owns(tmp_path):
    config = AutoscalersConfig.model_validate({"vpa": {"deploy": True}})
    args = ClusterAutoscalersArgs(config=config, vpa_manifests=_manifests(tmp_path))
    graph = run_program(lambda: ClusterAutoscalers("scalers", args))
    names = sorted(r.name for r in graph.children_of(graph.named("scalers")))
    assert names == [
        "scalers-vpa-admission-controller",
        "scalers-vpa-admission-controller-service",
        "scalers-vpa-certs",
        "scalers-vpa-crds",
        "scalers-vpa-rbac",
        "scalers-vpa-recommender",
        "scalers-vpa-updater",
        "scalers-vpa-webhook",
    ]
    service = graph.named("scalers-vpa-admission-controller-service").inputs
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == (
        "vpa-webhook",
        "kube-system",
    )
    admission = graph.named("scalers-vpa-admission-controller").inputs["spec"]
    assert "--register-webhook=false" in admission["template"]["spec"]["containers"][0]["args"]
    (hook,) = graph.named("scalers-vpa-webhook").inputs["webhooks"]
    assert hook["clientConfig"]["service"] == {"name": "vpa-webhook", "namespace": "kube-system"}
    assert hook["failurePolicy"] == "Ignore"


def test_the_webhook_trusts_the_ca_that_signed_the_served_certificate():
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from mlplatform.certificates import serving_certificate

    tls = serving_certificate("vpa-webhook", "kube-system")
    ca = x509.load_pem_x509_certificate(tls.ca_pem.encode())
    cert = x509.load_pem_x509_certificate(tls.cert_pem.encode())
    ca.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
    )
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "vpa-webhook.kube-system.svc" in names.get_values_for_type(x509.DNSName)
    assert cert.issuer == ca.subject and "PRIVATE KEY" in tls.key_pem
