# shellcheck shell=bash disable=SC2034  # sourced: the scripts that source it read the versions
# One place for every pinned tool version. The Python SDK pins in requirements.txt must match
# (tests/unit/test_versions.py checks it).
PULUMI_VERSION=3.259.0
# pulumi-kubernetes 4.25.0: the newest release whose provider module the Go proxy serves.
K8S_PROVIDER_VERSION=4.25.0
DOCKER_BUILD_PROVIDER_VERSION=0.0.22
# The buildx CLI plugin, from the module version the provider itself requires.
BUILDX_VERSION=0.35.0
# 1.33.4: the newest 1.33 patch whose every staging module (k8s.io/kube-controller-manager
# v0.33.5 is missing) the Go proxy serves.
KUBE_VERSION=1.33.4
KWOK_VERSION=0.7.0
# crictl: v1.33.0 is not served; v1.34.0 speaks the same CRI v1 API to containerd 1.6.
CRICTL_VERSION=1.34.0
# The pause image (pod sandbox), built from build/pause in the k8s.io/kubernetes module.
PAUSE_VERSION=3.10.1
# Cluster DNS for the real nodes' pods.
COREDNS_VERSION=1.12.2
METRICS_SERVER_VERSION=0.8.0
PROMETHEUS_VERSION=3.5.0
PROMETHEUS_MODULE_VERSION=0.305.0
# CRDs for monitoring's operator mode (its tests install them).
PROMETHEUS_OPERATOR_VERSION=0.85.0
# The gateway: Traefik (Gateway API and Ingress controller, tools/go/traefik; v3.5.4 is the newest
# 3.5 patch the Go proxy serves) and the Gateway API CRDs of the version Traefik itself requires.
TRAEFIK_VERSION=3.5.4
GATEWAY_API_VERSION=1.3.0
# NetworkPolicy enforcement on the real nodes (tools/go/kube-network-policies; what kind runs).
KUBE_NETWORK_POLICIES_VERSION=0.8.0
# Autoscaling add-ons (step `autoscalers`). KEDA (tools/go/keda): the 2.18 line is built on the
# Kubernetes v0.33 libraries like our 1.33 control plane (v2.19 moves to v0.34). The Vertical Pod
# Autoscaler (tools/go/vpa): v1.4.2, also on v0.33 (the Go proxy refuses v1.5.0).
KEDA_VERSION=2.18.1
VPA_VERSION=1.4.2
# Dashboard checks: grafana-foundation-sdk's Go module (tools/go/grafana-check).
GRAFANA_SDK_GO_VERSION=0.0.22
# gRPC load generator of the serving benchmark (tools/go/ghz; `scripts/bootstrap.sh bench_peers`).
GHZ_VERSION=0.121.0
# Real nodes: Debian's containerd (comes with docker.io), runc, CNI plugins; conntrack and ipset
# for kube-proxy; docker-registry for the local OCI registry; openssl for the node certificates;
# patch for the one upstream file kube-network-policies is built with.
APT_PACKAGES="docker.io etcd-server debootstrap wrk iproute2 procps containerd runc containernetworking-plugins conntrack ipset iptables docker-registry openssl util-linux shellcheck patch socat"
