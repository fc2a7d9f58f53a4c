"""PDB, VPA, HPA behaviour, routes and network policy planning (signals: test_plan_autoscaling)."""

from __future__ import annotations

import pytest

from mlplatform.config import AutoscalingConfig, IngressConfig, ModelConfig, PdbConfig, VpaConfig
from mlplatform.plan.autoscaling import (
    pdb_min_available,
    plan_hpa,
    plan_pdb,
    plan_vpa,
    quantity,
)
from mlplatform.plan.network import plan_default_deny, plan_model_allow
from mlplatform.plan.routes import plan_grpc_route, plan_ingress, plan_route


def test_hpa_scales_up_fast_and_down_slowly():
    behavior = plan_hpa("iris", AutoscalingConfig(scale_down_stabilization_seconds=900))["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 900
    assert max(p["value"] for p in behavior["scaleUp"]["policies"] if p["type"] == "Percent") > max(
        p["value"] for p in behavior["scaleDown"]["policies"] if p["type"] == "Percent"
    )


@pytest.mark.parametrize("value, text", [(4.0, "4"), (0.5, "500m"), (12, "12"), (1.25, "1250m")])
def test_quantity(value, text):
    assert quantity(value) == text


@pytest.mark.parametrize(
    "min_replicas, explicit, expected",
    [
        (1, None, None),
        (2, None, 1),
        (3, None, 2),
        (5, 2, 2),
    ],
)
def test_pdb_exists_from_two_replicas(min_replicas, explicit, expected):
    scaling = AutoscalingConfig(min_replicas=min_replicas, max_replicas=max(min_replicas, 3))
    assert pdb_min_available(PdbConfig(min_available=explicit), scaling) == expected


def test_pdb_protects_only_healthy_stable_pods():
    spec = plan_pdb({"app.kubernetes.io/instance": "iris"}, 2)
    assert spec == {
        "minAvailable": 2,
        "selector": {"matchLabels": {"app.kubernetes.io/instance": "iris"}},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


@pytest.mark.parametrize(
    "mode, update_mode", [("off", "Off"), ("initial", "Initial"), ("auto", "Auto")]
)
def test_vpa_modes(mode, update_mode):
    vpa = VpaConfig.model_validate(
        {
            "mode": mode,
            "controlledResources": ["memory"],
            "maxAllowed": {"cpu": "2", "memory": "4Gi"},
        }
    )
    spec = plan_vpa("iris", vpa)
    assert spec["updatePolicy"] == {"updateMode": update_mode}
    policy = spec["resourcePolicy"]["containerPolicies"][0]
    assert policy == {
        "containerName": "model-server",
        "controlledResources": ["memory"],
        "maxAllowed": {"cpu": "2", "memory": "4Gi"},
    }


def model(**changes) -> ModelConfig:
    return ModelConfig.model_validate({"name": "iris", "framework": "sklearn", **changes})


def test_path_route_rewrites_to_the_server_root_on_nginx():
    ingress = IngressConfig(api="ingress", controller="nginx", class_name="nginx")
    route = plan_route(model(), ingress)
    assert (route.host, route.path, route.url) == (
        None,
        "/models/iris",
        "http://<gateway-address>/models/iris",
    )
    annotations, spec = plan_ingress(route, ingress, "iris")
    assert annotations["nginx.ingress.kubernetes.io/rewrite-target"] == "/$2"
    path = spec["rules"][0]["http"]["paths"][0]
    assert path["path"] == "/models/iris(/|$)(.*)"
    assert path["backend"] == {"service": {"name": "iris", "port": {"name": "http"}}}
    assert spec["ingressClassName"] == "nginx" and "host" not in spec["rules"][0]


def test_generic_controller_gets_a_plain_prefix():
    ingress = IngressConfig(controller="generic", class_name="traefik", host="ml.example.com")
    annotations, spec = plan_ingress(plan_route(model(), ingress), ingress, "iris")
    assert annotations == {}
    assert spec["rules"][0]["http"]["paths"][0]["pathType"] == "Prefix"
    assert spec["ingressClassName"] == "traefik"


def test_host_route_with_tls_and_cert_manager():
    ingress = IngressConfig.model_validate(
        {
            "routing": "host",
            "domain": "ml.example.com",
            "tls": {"enabled": True, "clusterIssuer": "letsencrypt"},
        }
    )
    route = plan_route(model(), ingress)
    assert route.url == "https://iris.ml.example.com/"
    annotations, spec = plan_ingress(route, ingress, "iris")
    assert spec["tls"] == [{"hosts": ["iris.ml.example.com"], "secretName": "iris-tls"}]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert "nginx.ingress.kubernetes.io/rewrite-target" not in annotations


def test_canary_twin_has_weight_and_same_route():
    ingress = IngressConfig.model_validate({"routing": "host", "domain": "ml.example.com"})
    route = plan_route(model(), ingress)
    stable_annotations, stable = plan_ingress(route, ingress, "iris")
    annotations, canary = plan_ingress(route, ingress, "iris-canary", canary_weight=15)
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "15"
    assert "nginx.ingress.kubernetes.io/canary" not in stable_annotations
    assert canary["rules"][0]["host"] == stable["rules"][0]["host"]
    assert canary["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "iris-canary"


def test_model_route_overrides_win():
    ingress = IngressConfig(routing="path", path_prefix="/api")
    assert plan_route(model(), ingress).path == "/api/iris"
    assert plan_route(model(ingress={"path": "/flowers"}), ingress).path == "/flowers"


def test_default_deny_selects_every_pod():
    assert plan_default_deny() == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_model_policy_admits_only_ingress_and_monitoring_namespaces():
    spec = plan_model_allow("iris")
    assert spec["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "iris",
        "app.kubernetes.io/component": "model-server",
    }
    sources = [rule["from"][0]["namespaceSelector"]["matchLabels"] for rule in spec["ingress"]]
    assert sources == [{"mlplatform.io/role": "ingress"}, {"mlplatform.io/role": "monitoring"}]
    ingress, monitoring = (rule["ports"] for rule in spec["ingress"])
    # The gateway reaches REST and gRPC; monitoring only the REST port, where /metrics is.
    assert ingress == [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8081}]
    assert monitoring == [{"protocol": "TCP", "port": 8080}]


def test_ingress_skips_the_address_wait_only_when_asked():
    route = plan_route(model(), IngressConfig())
    assert "pulumi.com/skipAwait" not in plan_ingress(route, IngressConfig(), "iris")[0]
    skipped, _ = plan_ingress(route, IngressConfig(await_address=False), "iris")
    assert skipped["pulumi.com/skipAwait"] == "true"


@pytest.mark.parametrize(
    ("settings", "metadata", "hostnames"),
    [
        # path routing shares one host (or any): the model header tells the models apart
        ({"routing": "path"}, {"mlplatform-model": "iris"}, None),
        (
            {"routing": "path", "host": "ml.example.com"},
            {"mlplatform-model": "iris"},
            ["ml.example.com"],
        ),
        # host routing gives each model its own host: no metadata needed
        ({"routing": "host", "domain": "ml.example.com"}, {}, ["iris.ml.example.com"]),
        # ...unless there is no domain to make one from
        ({"routing": "host"}, {"mlplatform-model": "iris"}, None),
    ],
)
def test_grpc_route_tells_models_apart_by_host_or_metadata(settings, metadata, hostnames):
    ingress = IngressConfig.model_validate(settings)
    route = plan_route(model(), ingress)
    assert route.grpc_metadata == metadata
    spec = plan_grpc_route(route, ingress, "iris")
    (match,) = spec["rules"][0]["matches"]
    assert match["method"] == {"type": "Exact", "service": "inference.GRPCInferenceService"}
    headers = {h["name"]: h["value"] for h in match.get("headers", [])}
    assert headers == metadata
    assert spec.get("hostnames") == hostnames
    assert spec["rules"][0]["backendRefs"] == [{"name": "iris", "port": 8081, "weight": 100}]
