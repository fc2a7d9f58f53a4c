"""The pulumi-policy wiring: real analyzer servicer, real protobuf requests, no engine.

Needs the policy pack's own environment (pulumi-policy pins protobuf 5, TensorFlow needs 6):
    policy/.venv/bin/python -m pytest tests/unit/test_policy*.py
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))

try:
    from google.protobuf import struct_pb2
    from pulumi.runtime import proto
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer
    from pulumi_policy.proxy import (
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
        unknown_checking_proxy,
    )
except ImportError as e:  # the main environment cannot hold pulumi-policy
    raise ImportError(
        f"{__file__} needs the policy pack environment: build it with "
        "`python3 -m venv policy/.venv && "
        "policy/.venv/bin/pip install -r policy/requirements.txt`, then run "
        "`policy/.venv/bin/python -m pytest tests/unit/test_policy*.py`"
    ) from e

from mlpolicy import examples as ex  # noqa: E402
from mlpolicy.adapter import PACK_NAME, build_policies, to_plain  # noqa: E402
from mlpolicy.config import PolicyConfigError  # noqa: E402
from mlpolicy.k8s import UNKNOWN  # noqa: E402
from mlpolicy.registry import RULES  # noqa: E402

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def struct(props):
    s = struct_pb2.Struct()
    s.update(props)
    return s


@pytest.fixture()
def analyzer():
    # The servicer behind PolicyPack (which would block serving gRPC); private, but it is exactly
    # what the engine talks to.
    return _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", build_policies(), EnforcementLevel.ADVISORY)


def analyze(analyzer, props, type_=DEPLOYMENT):
    request = proto.AnalyzeRequest(
        type=type_,
        properties=struct(props),
        urn=f"urn:pulumi:dev::mlplatform::{type_}::iris",
        name="iris",
    )
    return list(analyzer.Analyze(request, None).diagnostics)


def analyze_stack(analyzer, resources):
    request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(type=r.type, properties=struct(r.props), urn=r.urn, name=r.name)
            for r in resources
        ]
    )
    return list(analyzer.AnalyzeStack(request, None).diagnostics)


def test_to_plain_unwraps_proxies_and_marks_unknowns():
    raw = {"spec": {"containers": [{"image": UNKNOWN_STRING_VALUE, "name": "m"}], "replicas": 2}}
    plain = to_plain(unknown_checking_proxy(raw))
    assert plain == {"spec": {"containers": [{"image": UNKNOWN, "name": "m"}], "replicas": 2}}
    assert type(plain["spec"]["containers"]) is list


def test_pack_declares_every_rule_with_its_level_and_schema(analyzer):
    info = analyzer.GetAnalyzerInfo(None, None)
    assert info.name == PACK_NAME
    declared = {p.name: p for p in info.policies}
    assert set(declared) == {r.name for r in RULES}
    assert declared["pdb-required"].enforcementLevel == proto.MANDATORY
    assert declared["pod-security-restricted"].enforcementLevel == proto.ADVISORY
    assert "externalPools" in declared["gpu-capacity"].configSchema.properties


def test_compliant_deployment_has_no_diagnostics(analyzer):
    assert analyze(analyzer, ex.deployment("iris")) == []


def test_latest_tag_is_a_mandatory_violation_with_the_rule_message(analyzer):
    d = ex.deployment("iris")
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "mlplatform/iris:latest"
    [diag] = analyze(analyzer, d)
    assert diag.policyName == "immutable-image-tags" and diag.policyPackName == PACK_NAME
    assert diag.enforcementLevel == proto.MANDATORY
    assert "uses the mutable tag ':latest'" in diag.message


def test_unknown_image_in_preview_produces_no_diagnostic(analyzer):
    d = ex.deployment("iris")
    d["spec"]["template"]["spec"]["containers"][0]["image"] = UNKNOWN_STRING_VALUE
    # Without to_plain the proxy would raise and the engine would print "can't run policy".
    assert analyze(analyzer, d) == []


def test_policy_pack_config_overrides_level_and_options(analyzer):
    d = ex.deployment("iris")
    del d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    analyzer.Configure(
        proto.ConfigureAnalyzerRequest(
            policyConfig={
                "probes": proto.PolicyConfig(enforcementLevel=proto.ADVISORY),
                "container-resources": proto.PolicyConfig(
                    enforcementLevel=proto.MANDATORY,
                    properties=struct(
                        {"requiredResources": ["cpu", "memory", "ephemeral-storage"]}
                    ),
                ),
            }
        ),
        None,
    )
    diags = {dg.policyName: dg for dg in analyze(analyzer, d)}
    assert diags["probes"].enforcementLevel == proto.ADVISORY
    assert "ephemeral-storage" in diags["container-resources"].message


def test_invalid_policy_config_fails_loudly(analyzer):
    analyzer.Configure(
        proto.ConfigureAnalyzerRequest(
            policyConfig={
                "immutable-image-tags": proto.PolicyConfig(
                    enforcementLevel=proto.MANDATORY, properties=struct({"mutableTag": ["stable"]})
                ),
            }
        ),
        None,
    )
    with pytest.raises(PolicyConfigError, match="immutable-image-tags.mutableTag"):
        analyze(analyzer, ex.deployment("iris"))


def test_stack_rules_pin_violations_to_the_resource(analyzer):
    stack = [
        r
        for r in ex.compliant_stack()
        if not (r.type.endswith("PodDisruptionBudget") and r.name.startswith("iris"))
    ]
    assert analyze_stack(analyzer, ex.compliant_stack()) == []
    [diag] = analyze_stack(analyzer, stack)
    assert diag.policyName == "pdb-required" and diag.enforcementLevel == proto.MANDATORY
    assert diag.urn.endswith("::iris-deployment")
    assert "no PodDisruptionBudget in namespace 'models'" in diag.message


def test_second_autoscaler_is_mandatory_and_an_unknown_scaled_object_is_not(analyzer):
    stack = ex.compliant_stack()
    [wine_so] = [r for r in stack if r.name == "wine-scaledobject"]
    extra = ex.res("HPA", ex.hpa("wine"))
    [diag] = analyze_stack(analyzer, [*stack, extra])
    assert diag.policyName == "one-autoscaler-per-workload"
    assert diag.enforcementLevel == proto.MANDATORY and diag.urn.endswith("::wine-deployment")
    # A ScaledObject whose spec is computed during preview: nothing to judge, nothing raised.
    wine_so.props["spec"] = UNKNOWN_OBJECT_VALUE
    assert analyze_stack(analyzer, stack) == []
