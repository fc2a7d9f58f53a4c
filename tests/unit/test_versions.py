"""The Python SDK pins must equal the engine and plugin versions bootstrap builds: the SDK asks
the engine for exactly its own plugin version, and automatic plugin downloads are off."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shell_vars(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z0-9_]+)=\"?([^\"\n#]*)\"?", path.read_text(), re.M))


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", path.read_text(), re.M))


def test_sdk_pins_match_the_built_engine_and_plugins():
    versions = shell_vars(REPO / "scripts" / "versions.sh")
    req = pins(REPO / "requirements.txt")
    assert req["pulumi"] == versions["PULUMI_VERSION"]
    assert req["pulumi-kubernetes"] == versions["K8S_PROVIDER_VERSION"]
    assert req["pulumi-docker-build"] == versions["DOCKER_BUILD_PROVIDER_VERSION"]


def test_policy_environment_uses_the_same_engine_sdk():
    versions = shell_vars(REPO / "scripts" / "versions.sh")
    assert pins(REPO / "policy" / "requirements.txt")["pulumi"] == versions["PULUMI_VERSION"]


def test_go_wrappers_pin_the_same_versions():
    versions = shell_vars(REPO / "scripts" / "versions.sh")
    tools = REPO / "tools" / "go"
    assert (
        f"github.com/pulumi/pulumi/pkg/v3 v{versions['PULUMI_VERSION']}"
        in (tools / "pulumi" / "go.mod").read_text()
    )
    assert (
        f"k8s.io/kubernetes v{versions['KUBE_VERSION']}"
        in (tools / "kubernetes" / "go.mod").read_text()
    )
    assert (
        f"sigs.k8s.io/kwok v{versions['KWOK_VERSION']}" in (tools / "kwok" / "go.mod").read_text()
    )
    assert (
        f"github.com/pulumi/pulumi-docker-build v{versions['DOCKER_BUILD_PROVIDER_VERSION']}"
        in (tools / "docker-build" / "go.mod").read_text()
    )
    assert (
        f"github.com/prometheus/prometheus v{versions['PROMETHEUS_MODULE_VERSION']}"
        in (tools / "prometheus" / "go.mod").read_text()
    )
    assert (
        f"github.com/bojand/ghz v{versions['GHZ_VERSION']}"
        in (tools / "ghz" / "go.mod").read_text()
    )


def test_gateway_wrappers_pin_the_same_versions():
    versions = shell_vars(REPO / "scripts" / "versions.sh")
    tools = REPO / "tools" / "go"
    traefik = (tools / "traefik" / "go.mod").read_text()
    assert f"github.com/traefik/traefik/v3 v{versions['TRAEFIK_VERSION']}" in traefik
    # The CRDs bootstrap installs are those of the Gateway API version Traefik itself is built on.
    assert f"sigs.k8s.io/gateway-api v{versions['GATEWAY_API_VERSION']}" in traefik
    netpol = (tools / "kube-network-policies" / "go.mod").read_text()
    assert (
        f"sigs.k8s.io/kube-network-policies v{versions['KUBE_NETWORK_POLICIES_VERSION']}" in netpol
    )


def test_autoscaler_wrappers_pin_the_same_versions():
    versions = shell_vars(REPO / "scripts" / "versions.sh")
    tools = REPO / "tools" / "go"
    keda = (tools / "keda" / "go.mod").read_text()
    assert f"github.com/kedacore/keda/v2 v{versions['KEDA_VERSION']}" in keda
    vpa = (tools / "vpa" / "go.mod").read_text()
    assert f"k8s.io/autoscaler/vertical-pod-autoscaler v{versions['VPA_VERSION']}" in vpa


def test_benchmark_peers_run_the_servers_runtimes():
    """The serving benchmark's peers serve the same ONNX file with the same ONNX Runtime, and
    MLServer's scikit-learn runtime unpickles the forest with the scikit-learn that trained it."""
    req = pins(REPO / "requirements.txt")
    peers = REPO / "benchmarks" / "peers"
    for name in ("kserve", "mlserver", "pytriton"):
        assert pins(peers / f"requirements-{name}.txt")["onnxruntime"] == req["onnxruntime"], name
    assert pins(peers / "requirements-mlserver.txt")["scikit-learn"] == req["scikit-learn"]
