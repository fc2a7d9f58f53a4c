#!/usr/bin/env bash
# make bootstrap: every tool the project needs, from package registries only (Go module proxy,
# Debian, PyPI), built once per version into $MLP_CACHE (default ~/.cache/mlplatform).
# Idempotent and resumable: each step is skipped when its version key is unchanged.
#   scripts/bootstrap.sh            all steps
#   scripts/bootstrap.sh venv ...   only the named steps
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/scripts/versions.sh"

export PULUMI_HOME="$MLP_CACHE/pulumi-home"
export GOFLAGS=-buildvcs=false
# Our wrapper modules commit go.sum, which pins every module hash; the checksum database is not
# reachable from our machines (its lookups answer 404), so it is not consulted.
export GOSUMDB=off
export CGO_ENABLED=0
GO_TOOLS="$REPO_ROOT/tools/go"

# Where NAME is on PATH outside our cache. A shell that sourced scripts/env.sh has $MLP_BIN on
# PATH, where `command -v` would find our own link (and linking it again would make it a loop).
outside_cache() {
  PATH=$(echo "$PATH" | tr ':' '\n' | grep -vxF "$MLP_BIN" | paste -sd:) command -v "$1" 2>/dev/null
}

# A tool at the right version already on PATH (outside our cache) is used instead of a build.
# found_on_path NAME VERSION_CMD EXPECTED -> prints the path if it matches.
found_on_path() {
  local name=$1 expected=$3 p
  p=$(outside_cache "$name") || return 1
  # shellcheck disable=SC2086  # VERSION_CMD is a command line: split on purpose
  [[ $("$p" $2 2>/dev/null | head -n1) == *"$expected"* ]] || return 1
  echo "$p"
}

step_apt() {
  local need=() pkg
  for pkg in $APT_PACKAGES; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
  if ((${#need[@]})); then
    progress "apt: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${need[@]}" >"$MLP_LOGS/apt.log" 2>&1 ||
      { apt-get update -q >>"$MLP_LOGS/apt.log" 2>&1 && apt-get install -y -q "${need[@]}" >>"$MLP_LOGS/apt.log" 2>&1; } ||
      { progress "apt: FAILED; log: $MLP_LOGS/apt.log"; tail -n 20 "$MLP_LOGS/apt.log"; exit 1; }
  fi
  progress "apt: $APT_PACKAGES present"
}

step_docker() { "$REPO_ROOT/scripts/docker.sh" start; }

venv_build() { # DIR REQUIREMENTS — DIR is keyed by the requirements hash; rebuilt whole on retry
  rm -rf "$1" && python3 -m venv "$1" && "$1/bin/pip" install --progress-bar off -r "$2"
}

# link_venv DIR LINK: point LINK (what Pulumi.yaml / PulumiPolicy.yaml name) at the cached venv,
# replacing a venv someone created there by hand.
link_venv() {
  [[ -L $2 || ! -e $2 ]] || rm -rf "$2"
  ln -sfn "$1" "$2"
}

step_venv() {
  local key; key=$(hash_files "$REPO_ROOT/requirements.txt")
  local dir="$MLP_CACHE/venv-$key"
  # One step (and marker) per requirements hash: checkouts with different requirements (branches,
  # worktrees) share the cache without rebuilding each other's environments.
  run_step "venv-$key" "$key" venv_build "$dir" "$REPO_ROOT/requirements.txt"
  link_venv "$dir" "$REPO_ROOT/.venv"

  key=$(hash_files "$REPO_ROOT/policy/requirements.txt")
  dir="$MLP_CACHE/venv-policy-$key"
  run_step "venv-policy-$key" "$key" venv_build "$dir" "$REPO_ROOT/policy/requirements.txt"
  link_venv "$dir" "$REPO_ROOT/policy/.venv"
}

build_pulumi() {
  local out="$MLP_CACHE/pulumi/$PULUMI_VERSION" sdk
  mkdir -p "$out.tmp"
  cd "$GO_TOOLS/pulumi"
  go build -v -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    -o "$out.tmp/" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ./cmd/pulumi-language-python
  # The language host runs the SDK's own runner script, shipped inside the sdk/v3 module.
  sdk=$(module_dir github.com/pulumi/pulumi/sdk/v3)
  cp "$sdk/python/cmd/pulumi-language-python-exec" "$out.tmp/" && chmod +x "$out.tmp/pulumi-language-python-exec"
  "$out.tmp/pulumi" version
  rm -rf "$out" && mv "$out.tmp" "$out"
}

step_pulumi() {
  local dir="$MLP_CACHE/pulumi/$PULUMI_VERSION" p
  if p=$(found_on_path pulumi version "v$PULUMI_VERSION") && [[ -x $(dirname "$p")/pulumi-language-python ]]; then
    progress "pulumi: using $p (v$PULUMI_VERSION already installed)"
    dir=$(dirname "$p")
  else
    run_step pulumi "$PULUMI_VERSION-$(hash_files "$GO_TOOLS"/pulumi/go.* "$GO_TOOLS"/pulumi/cmd/*/*.go)" build_pulumi
  fi
  for p in pulumi pulumi-language-python pulumi-language-python-exec; do ln -sfn "$dir/$p" "$MLP_BIN/$p"; done
}

build_k8s_provider() {
  local src="$MLP_BUILD/pulumi-kubernetes-src" mod
  rm -rf "$src" && mkdir -p "$src" && cp "$GO_TOOLS"/pulumi-kubernetes/{go.mod,go.sum,main.go} "$src/"
  cd "$src"
  mod=$(module_dir github.com/pulumi/pulumi-kubernetes/provider/v4)
  # The provider embeds its schema stamped with the release version, minified.
  python3 - "$mod/cmd/pulumi-resource-kubernetes" "$K8S_PROVIDER_VERSION" <<'PY'
import json, sys
d, version = sys.argv[1], sys.argv[2]
schema = json.load(open(f"{d}/schema.json"))
schema["version"] = version
json.dump(schema, open("schema-embed.json", "w"), separators=(",", ":"))
json.dump(json.load(open(f"{d}/terraform-mapping.json")), open("terraform-mapping-embed.json", "w"), separators=(",", ":"))
PY
  go build -v -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_VERSION" \
    -o pulumi-resource-kubernetes .
  install_plugin kubernetes "$K8S_PROVIDER_VERSION" "$src/pulumi-resource-kubernetes"
}

# The docker-build provider builds in-process only through a BuildKit container builder, which
# it would pull (moby/buildkit) from Docker Hub; we have no registry. Its `exec` mode instead runs
# `docker buildx build` on the Docker engine's own BuildKit, so we build the buildx CLI plugin
# (same module graph as the provider) and the components build with exec=true.
build_docker_build_provider() {
  local tmp="$MLP_CACHE/docker-build/$DOCKER_BUILD_PROVIDER_VERSION"
  build_wrapper "$tmp" docker-build \
    "-X github.com/pulumi/pulumi-docker-build/provider.Version=$DOCKER_BUILD_PROVIDER_VERSION -X github.com/docker/buildx/version.Version=v$BUILDX_VERSION" \
    github.com/pulumi/pulumi-docker-build/provider/cmd/pulumi-resource-docker-build github.com/docker/buildx/cmd/buildx
  mv "$tmp/buildx" "$tmp/docker-buildx"
  install_plugin docker-build "$DOCKER_BUILD_PROVIDER_VERSION" "$tmp/pulumi-resource-docker-build"
}

# install_plugin NAME VERSION BINARY: `pulumi plugin install --file` writes the plugin and its
# completion marker itself, so Pulumi never picks up a half-installed plugin.
install_plugin() {
  "$MLP_BIN/pulumi" plugin rm resource "$1" "$2" --yes >/dev/null 2>&1 || true
  "$MLP_BIN/pulumi" plugin install resource "$1" "$2" --file "$3"
}

step_providers() {
  run_step provider-kubernetes "$K8S_PROVIDER_VERSION-$(hash_files "$GO_TOOLS"/pulumi-kubernetes/*)" build_k8s_provider
  run_step provider-docker-build "$DOCKER_BUILD_PROVIDER_VERSION-$BUILDX_VERSION-$(hash_files "$GO_TOOLS"/docker-build/go.* "$GO_TOOLS"/docker-build/shims/*/*/*.go "$GO_TOOLS"/docker-build/shims/*/*/*/*/*.go)" build_docker_build_provider
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sfn "$MLP_CACHE/docker-build/$DOCKER_BUILD_PROVIDER_VERSION/docker-buildx" "$HOME/.docker/cli-plugins/docker-buildx"
}

# kube_ldflags: the version stamps Kubernetes' own build sets (`kubectl version`, node info).
kube_ldflags() {
  local v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version f="" pkg
  local minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  for pkg in $v $c; do
    f+=" -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$f"
}

build_kubernetes() {
  local out="$MLP_CACHE/kubernetes/$KUBE_VERSION"
  build_wrapper "$out" kubernetes "$(kube_ldflags)" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  "$out/kube-apiserver" --version
}

# build_wrapper OUTDIR WRAPPER LDFLAGS PKGS...: build PKGS in the wrapper module tools/go/WRAPPER
# into OUTDIR (through OUTDIR.tmp, so a failed build leaves no half-filled OUTDIR).
build_wrapper() {
  local out=$1 wrapper=$2 ldflags=$3; shift 3
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  (cd "$GO_TOOLS/$wrapper" && GOFLAGS="$GOFLAGS -mod=mod" go build -v -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp/" "$@")
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_prometheus() {
  local out="$MLP_CACHE/prometheus/$PROMETHEUS_VERSION" v=github.com/prometheus/common/version
  build_wrapper "$out" prometheus "-X $v.Version=$PROMETHEUS_VERSION -X $v.Branch=release -X $v.Revision=v$PROMETHEUS_MODULE_VERSION" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
  "$out/promtool" --version
}

step_cluster_tools() {
  local d p
  d="$MLP_CACHE/kubernetes/$KUBE_VERSION"
  if p=$(found_on_path kube-apiserver --version "v$KUBE_VERSION"); then d=$(dirname "$p"); progress "kubernetes: using $d"
  else run_step kubernetes "$KUBE_VERSION-$(hash_files "$GO_TOOLS"/kubernetes/go.*)" build_kubernetes; fi
  for p in kube-apiserver kube-controller-manager kube-scheduler kubectl; do ln -sfn "$d/$p" "$MLP_BIN/$p"; done

  d="$MLP_CACHE/kwok/$KWOK_VERSION"
  run_step kwok "$KWOK_VERSION-$(hash_files "$GO_TOOLS"/kwok/go.*)" build_wrapper "$d" kwok "" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  ln -sfn "$d/kwok" "$MLP_BIN/kwok"; ln -sfn "$d/kwokctl" "$MLP_BIN/kwokctl"

  d="$MLP_CACHE/metrics-server/$METRICS_SERVER_VERSION"
  run_step metrics-server "$METRICS_SERVER_VERSION-$(hash_files "$GO_TOOLS"/metrics-server/go.*)" build_wrapper "$d" \
    metrics-server "-X sigs.k8s.io/metrics-server/pkg/version.gitVersion=v$METRICS_SERVER_VERSION" \
    sigs.k8s.io/metrics-server/cmd/metrics-server
  ln -sfn "$d/metrics-server" "$MLP_BIN/metrics-server"
  local etcd
  etcd=$(outside_cache etcd) || { echo "etcd not on PATH (the apt step installs Debian's)" >&2; exit 1; }
  ln -sfn "$etcd" "$MLP_BIN/etcd"
}

# The real worker nodes (scripts/nodes.sh): kubelet and kube-proxy from a sibling of the control
# plane's wrapper (same module graph, so its packages come from the Go build cache), crictl, and
# the pause binary compiled from Kubernetes' own source in the same module, and CoreDNS (cluster
# DNS) with the few plugins it needs. containerd, runc and the CNI plugins are Debian's.
build_node_agents() {
  local out="$MLP_CACHE/kubelet/$KUBE_VERSION"
  build_wrapper "$out" kubelet "$(kube_ldflags)" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  "$out/kubelet" --version
}

build_pause() {
  local out="$MLP_CACHE/pause/$PAUSE_VERSION" src
  src=$(cd "$GO_TOOLS/kubelet" && module_dir "k8s.io/kubernetes@v$KUBE_VERSION")/build/pause/linux/pause.c
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-mlplatform" -o "$out.tmp/pause" "$src"
  "$out.tmp/pause" -v
  rm -rf "$out" && mv "$out.tmp" "$out"
}

step_node_tools() {
  local d="$MLP_CACHE/kubelet/$KUBE_VERSION" p
  run_step node-agents "$KUBE_VERSION-$(hash_files "$GO_TOOLS"/kubelet/go.*)" build_node_agents
  for p in kubelet kube-proxy; do ln -sfn "$d/$p" "$MLP_BIN/$p"; done
  d="$MLP_CACHE/crictl/$CRICTL_VERSION"
  run_step crictl "$CRICTL_VERSION-$(hash_files "$GO_TOOLS"/crictl/go.*)" build_wrapper "$d" crictl \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=v$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
  ln -sfn "$d/crictl" "$MLP_BIN/crictl"
  run_step pause "$PAUSE_VERSION-$KUBE_VERSION" build_pause
  ln -sfn "$MLP_CACHE/pause/$PAUSE_VERSION/pause" "$MLP_BIN/pause"
  d="$MLP_CACHE/coredns/$COREDNS_VERSION"
  run_step coredns "$COREDNS_VERSION-$(hash_files "$GO_TOOLS"/coredns/*)" build_wrapper "$d" coredns \
    "-X github.com/coredns/coredns/coremain.GitCommit=v$COREDNS_VERSION" .
  ln -sfn "$d/coredns" "$MLP_BIN/coredns"
}

step_prometheus() {
  local d="$MLP_CACHE/prometheus/$PROMETHEUS_VERSION"
  run_step prometheus "$PROMETHEUS_VERSION-$(hash_files "$GO_TOOLS"/prometheus/go.*)" build_prometheus
  ln -sfn "$d/prometheus" "$MLP_BIN/prometheus"; ln -sfn "$d/promtool" "$MLP_BIN/promtool"
}

# The gateway: Traefik (tools/go/traefik), whose Kubernetes Gateway provider serves Gateway API
# routes (and Ingresses), and the Gateway API CRDs of the module version Traefik itself requires.
# Only the standard channel (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant): Traefik
# watches TCPRoute, TLSRoute and BackendTLSPolicy only when its experimentalChannel option is on.
build_traefik() {
  local out="$MLP_CACHE/traefik/$TRAEFIK_VERSION" v=github.com/traefik/traefik/v3/pkg/version
  build_wrapper "$out" traefik "-X $v.Version=v$TRAEFIK_VERSION -X $v.BuildDate=1970-01-01T00:00:00Z" \
    github.com/traefik/traefik/v3/cmd/traefik
  "$out/traefik" version
}

copy_gateway_api_crds() {
  local out="$MLP_CACHE/gateway-api/$GATEWAY_API_VERSION" mod
  mod=$(cd "$GO_TOOLS/traefik" && module_dir "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION")
  rm -rf "$out.tmp" && mkdir -p "$out.tmp/standard"
  cp "$mod"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$out.tmp/standard/"
  chmod -R u+w "$out.tmp"
  ls "$out.tmp/standard"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

step_gateway() {
  local d="$MLP_CACHE/traefik/$TRAEFIK_VERSION"
  run_step traefik "$TRAEFIK_VERSION-$(hash_files "$GO_TOOLS"/traefik/go.*)" build_traefik
  ln -sfn "$d/traefik" "$MLP_BIN/traefik"
  run_step gateway-api-crds "$GATEWAY_API_VERSION" copy_gateway_api_crds
}

# Autoscaling add-ons: KEDA (tools/go/keda: operator, external-metrics API server, admission
# webhooks) and the Vertical Pod Autoscaler (tools/go/vpa: recommender, updater, admission
# controller). `go build -o DIR/` names a program after its package folder (operator, updater...),
# so each is renamed with its project's prefix. Each lands in OUT.tmp first, so a failed build
# leaves no half-filled OUT.
build_keda() {
  local out="$MLP_CACHE/keda/$KEDA_VERSION" v=github.com/kedacore/keda/v2/version p
  build_wrapper "$out.tmp" keda "-X $v.Version=$KEDA_VERSION -X $v.GitCommit=v$KEDA_VERSION" \
    github.com/kedacore/keda/v2/cmd/operator github.com/kedacore/keda/v2/cmd/adapter github.com/kedacore/keda/v2/cmd/webhooks
  for p in operator adapter webhooks; do mv "$out.tmp/$p" "$out.tmp/keda-$p"; done
  for p in operator adapter webhooks; do
    [[ $("$out.tmp/keda-$p" --help 2>&1) == *--kubeconfig* ]] || { echo "keda-$p --help lacks --kubeconfig" >&2; exit 1; }
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_vpa() {
  local out="$MLP_CACHE/vpa/$VPA_VERSION" pkg=k8s.io/autoscaler/vertical-pod-autoscaler/pkg p
  build_wrapper "$out.tmp" vpa "" "$pkg/recommender" "$pkg/updater" "$pkg/admission-controller"
  for p in recommender updater admission-controller; do mv "$out.tmp/$p" "$out.tmp/vpa-$p"; done
  for p in recommender updater admission-controller; do
    [[ $("$out.tmp/vpa-$p" --help 2>&1) == *--kubeconfig* ]] || { echo "vpa-$p --help lacks --kubeconfig" >&2; exit 1; }
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# What the stack applies of upstream's own deploy files, copied from the same module versions
# (never committed) into autoscaler-manifests/<addon>-<version>/{crds,rbac}. KEDA: its CRDs; the
# operator's roles (generated from its kubebuilder markers) and their bindings; the metrics
# apiserver's delegated-auth bindings, the HPA controller's external-metrics reader and the
# APIService; the validating webhook configuration (the operator writes the CA into both).
# VPA: its CRDs (generated from the Go types) and RBAC (ServiceAccounts in kube-system).
KEDA_MANIFESTS="config/rbac/role.yaml config/rbac/role_binding.yaml config/metrics-server/role.yaml
  config/metrics-server/role_binding.yaml config/metrics-server/api_service.yaml
  config/webhooks/validation_webhooks.yaml"
VPA_MANIFESTS="deploy/vpa-rbac.yaml"

copy_manifests() { # OUT MODULE_DIR CRDS FILES
  local out=$1 mod=$2 crds=$3 f
  rm -rf "$out.tmp" && mkdir -p "$out.tmp/crds" "$out.tmp/rbac"
  # shellcheck disable=SC2086  # CRDS is a glob on purpose
  cp $crds "$out.tmp/crds/"
  for f in $4; do cp "$mod/$f" "$out.tmp/rbac/$(echo "$f" | tr / -)"; done
  chmod -R u+w "$out.tmp"
  ls "$out.tmp"/*
  rm -rf "$out" && mv "$out.tmp" "$out"
}

copy_keda_manifests() {
  local mod; mod=$(cd "$GO_TOOLS/keda" && module_dir "github.com/kedacore/keda/v2@v$KEDA_VERSION")
  copy_manifests "$MLP_CACHE/autoscaler-manifests/keda-$KEDA_VERSION" "$mod" "$mod/config/crd/bases/*.yaml" "$KEDA_MANIFESTS"
}

copy_vpa_manifests() {
  local mod; mod=$(cd "$GO_TOOLS/vpa" && module_dir "k8s.io/autoscaler/vertical-pod-autoscaler@v$VPA_VERSION")
  copy_manifests "$MLP_CACHE/autoscaler-manifests/vpa-$VPA_VERSION" "$mod" "$mod/deploy/vpa-v1-crd-gen.yaml" "$VPA_MANIFESTS"
}

step_autoscalers() {
  local d p
  d="$MLP_CACHE/keda/$KEDA_VERSION"
  run_step keda "$KEDA_VERSION-$(hash_files "$GO_TOOLS"/keda/*)" build_keda
  for p in keda-operator keda-adapter keda-webhooks; do ln -sfn "$d/$p" "$MLP_BIN/$p"; done
  d="$MLP_CACHE/vpa/$VPA_VERSION"
  run_step vpa "$VPA_VERSION-$(hash_files "$GO_TOOLS"/vpa/*)" build_vpa
  for p in vpa-recommender vpa-updater vpa-admission-controller; do ln -sfn "$d/$p" "$MLP_BIN/$p"; done
  run_step keda-manifests "$KEDA_VERSION-$(echo "$KEDA_MANIFESTS" | sha256sum | cut -c1-12)" copy_keda_manifests
  run_step vpa-manifests "$VPA_VERSION-$(echo "$VPA_MANIFESTS" | sha256sum | cut -c1-12)" copy_vpa_manifests
}

# NetworkPolicy enforcement on the real nodes: kube-network-policies with our main.go (kubeconfig,
# clean stop on SIGTERM), built from a copy of the upstream module with one file patched: it queues
# packets with the xtables NFQUEUE target, since this kernel has no nftables `queue` expression
# (CONFIG_NFT_QUEUE is off and modules cannot be loaded). (`go build -overlay` may not replace files
# in the module cache, so the copy is required through a replace in a copy of the wrapper.)
build_network_policies() {
  local out="$MLP_CACHE/kube-network-policies/$KUBE_NETWORK_POLICIES_VERSION" wrapper="$GO_TOOLS/kube-network-policies"
  local src="$MLP_BUILD/kube-network-policies-src" mod
  mod=$(cd "$wrapper" && module_dir "sigs.k8s.io/kube-network-policies@v$KUBE_NETWORK_POLICIES_VERSION")
  rm -rf "$src" && mkdir -p "$src" && cp "$wrapper"/{go.mod,go.sum,main.go} "$src/"
  cp -r "$mod" "$src/upstream" && chmod -R u+w "$src/upstream"
  patch -d "$src/upstream" -p1 <"$wrapper/nfqueue-xt-target.patch"
  cd "$src"
  go mod edit -replace "sigs.k8s.io/kube-network-policies=./upstream"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  GOFLAGS="$GOFLAGS -mod=mod" go build -v -trimpath -ldflags "-s -w" -o "$out.tmp/" .
  [[ $("$out.tmp/kube-network-policies" --help 2>&1) == *-kubeconfig* ]]
  rm -rf "$out" && mv "$out.tmp" "$out"
}

step_netpol() {
  local d="$MLP_CACHE/kube-network-policies/$KUBE_NETWORK_POLICIES_VERSION"
  run_step kube-network-policies "$KUBE_NETWORK_POLICIES_VERSION-$(hash_files "$GO_TOOLS"/kube-network-policies/*)" \
    build_network_policies
  ln -sfn "$d/kube-network-policies" "$MLP_BIN/kube-network-policies"
}

# The Prometheus Operator CRDs (monitoring's operator mode is tested against them) ship in the
# operator's Go module; downloading it puts them in the module cache.
fetch_operator_crds() {
  go mod download -json "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" | grep '"Dir"'
}

step_operator_crds() {
  run_step prometheus-operator-crds "$PROMETHEUS_OPERATOR_VERSION" fetch_operator_crds
}

# grafana-check: generated dashboards decoded strictly by grafana-foundation-sdk's Go types
# (tests/integration/test_grafana_dashboards.py), since no Grafana server can be had here.
step_grafana_check() {
  local d="$MLP_CACHE/grafana-check/$GRAFANA_SDK_GO_VERSION"
  run_step grafana-check "$GRAFANA_SDK_GO_VERSION-$(hash_files "$GO_TOOLS"/grafana-check/*)" build_wrapper "$d" grafana-check "" .
  ln -sfn "$d/grafana-check" "$MLP_BIN/grafana-check"
}

# peer_venv NAME: benchmarks/peers/requirements-NAME.txt in a venv of its own keyed by the file,
# linked as benchmarks/peers/.venv-NAME (kserve cannot join the repo venv, pytriton needs numpy < 2).
peer_venv() {
  local req="$REPO_ROOT/benchmarks/peers/requirements-$1.txt" key dir
  key=$(hash_files "$req")
  dir="$MLP_CACHE/venv-peer-$1-$key"
  run_step "venv-peer-$1-$key" "$key" venv_build "$dir" "$req"
  link_venv "$dir" "$REPO_ROOT/benchmarks/peers/.venv-$1"
}

# KServe 0.21 (~520 MB): a serving benchmark peer, and its InferenceRESTClient/InferenceGRPCClient
# are among the clients the model tier tests (tests/models/kserve_client_probe.py).
step_kserve() { peer_venv kserve; }

# The other peers of the serving benchmarks (benchmarks/bench_serving*.py) and ghz, their gRPC load
# generator. Not in ALL_STEPS: ~1.5 GB that only `make bench` needs, and it runs this step.
step_bench_peers() {
  local peers="$REPO_ROOT/benchmarks/peers" name key dir
  [[ -e $REPO_ROOT/.venv ]] || step_venv # the FastAPI + TensorFlow peer reads TensorFlow from it
  for name in kserve mlserver pytriton plot; do peer_venv "$name"; done
  # FastAPI + TensorFlow: its own web stack, TensorFlow read from the repo venv (a .pth file)
  # instead of a second 1.9 GB copy; keyed by both requirements files.
  key=$(hash_files "$peers/requirements-fastapi-tf.txt" "$REPO_ROOT/requirements.txt")
  dir="$MLP_CACHE/venv-peer-fastapi-tf-$key"
  run_step "venv-peer-fastapi-tf-$key" "$key" venv_build_borrowing "$dir" "$peers/requirements-fastapi-tf.txt"
  link_venv "$dir" "$peers/.venv-fastapi-tf"

  dir="$MLP_CACHE/ghz/$GHZ_VERSION"
  run_step ghz "$GHZ_VERSION-$(hash_files "$GO_TOOLS"/ghz/*)" build_wrapper "$dir" ghz \
    "-X main.version=v$GHZ_VERSION" github.com/bojand/ghz/cmd/ghz
  ln -sfn "$dir/ghz" "$MLP_BIN/ghz"
}

venv_build_borrowing() { # DIR REQUIREMENTS: venv_build, then the repo venv's packages behind its own
  venv_build "$1" "$2"
  local site main
  site=$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  main=$("$(readlink -f "$REPO_ROOT/.venv")/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$main" >"$site/zz-repo-venv.pth"
}

step_images() { "$REPO_ROOT/scripts/base-images.sh"; }

summary() {
  progress "bootstrap complete in $(( $(date +%s) - _MLP_T0 ))s; tools in $MLP_BIN:"
  printf '  %-26s %-22s %s\n' TOOL VERSION PATH
  local t v
  for t in pulumi pulumi-language-python kube-apiserver kube-controller-manager kube-scheduler kubectl \
           kubelet kube-proxy kube-network-policies crictl coredns etcd kwok kwokctl metrics-server prometheus \
           promtool traefik keda-operator keda-adapter keda-webhooks vpa-recommender vpa-updater \
           vpa-admission-controller; do
    case $t in
      pulumi) v=$("$MLP_BIN/pulumi" version 2>/dev/null) ;;
      pulumi-language-python) v="v$PULUMI_VERSION (ours)" ;;
      kube-network-policies) v="v$KUBE_NETWORK_POLICIES_VERSION (patched)" ;;
      kube-*|kubelet) v=$("$MLP_BIN/$t" --version 2>/dev/null | awk '{print $2}') ;;
      crictl) v=$("$MLP_BIN/crictl" --version 2>/dev/null | awk '{print $3}') ;;
      coredns) v=$("$MLP_BIN/coredns" -version 2>/dev/null | awk -F- 'NR==1{print $2}') ;;
      kubectl) v=$("$MLP_BIN/kubectl" version --client 2>/dev/null | awk '/Client/{print $3}') ;;
      etcd) v=$("$MLP_BIN/etcd" --version 2>/dev/null | awk '/etcd Version/{print $3}') ;;
      kwok|kwokctl) v=$("$MLP_BIN/$t" --version 2>/dev/null | awk '{print $3}') ;;
      metrics-server) v=v$METRICS_SERVER_VERSION ;;
      prometheus|promtool) v=$("$MLP_BIN/$t" --version 2>/dev/null | awk 'NR==1{print $3}') ;;
      traefik) v=$("$MLP_BIN/traefik" version 2>/dev/null | awk '/^Version:/{print $2}') ;;
      keda-*) v=v$KEDA_VERSION ;;
      vpa-*) v=v$VPA_VERSION ;;
    esac
    printf '  %-26s %-22s %s\n' "$t" "${v:-?}" "$(readlink -f "$MLP_BIN/$t")"
  done
  printf '  %-26s %-22s %s\n' "plugin kubernetes" "v$K8S_PROVIDER_VERSION" "$PULUMI_HOME/plugins/resource-kubernetes-v$K8S_PROVIDER_VERSION"
  printf '  %-26s %-22s %s\n' "plugin docker-build" "v$DOCKER_BUILD_PROVIDER_VERSION" "$PULUMI_HOME/plugins/resource-docker-build-v$DOCKER_BUILD_PROVIDER_VERSION"
  printf '  %-26s %-22s %s\n' "docker buildx (CLI plugin)" "v$BUILDX_VERSION" "$(readlink -f "$HOME/.docker/cli-plugins/docker-buildx")"
  printf '  %-26s %-22s %s\n' "Gateway API CRDs" "v$GATEWAY_API_VERSION" "$MLP_CACHE/gateway-api/$GATEWAY_API_VERSION/standard"
  printf '  %-26s %-22s %s\n' "KEDA CRDs, RBAC" "v$KEDA_VERSION" "$MLP_CACHE/autoscaler-manifests/keda-$KEDA_VERSION/{crds,rbac}"
  printf '  %-26s %-22s %s\n' "VPA CRDs, RBAC" "v$VPA_VERSION" "$MLP_CACHE/autoscaler-manifests/vpa-$VPA_VERSION/{crds,rbac}"
  printf '  %-26s %-22s %s\n' "pause" "$("$MLP_BIN/pause" -v 2>/dev/null | awk '{print $2}')" "$(readlink -f "$MLP_BIN/pause")"
  printf '  %-26s %-22s %s\n' "containerd" "$(containerd --version 2>/dev/null | awk '{print $3}')" "$(command -v containerd)"
  printf '  %-26s %-22s %s\n' "docker-registry" "$(docker-registry --version 2>/dev/null | awk '{print $3}')" "$(command -v docker-registry)"
  printf '  %-26s %-22s %s\n' "dockerd" "$(docker version -f '{{.Server.Version}}' 2>/dev/null)" "$(command -v dockerd)"
  printf '  %-26s %-22s %s\n' "python venv" "$("$REPO_ROOT/.venv/bin/python" -V 2>&1 | awk '{print $2}')" "$(readlink -f "$REPO_ROOT/.venv")"
}

ALL_STEPS="apt docker venv kserve pulumi providers cluster_tools node_tools prometheus gateway autoscalers netpol operator_crds grafana_check images"
read -ra steps <<<"${*:-$ALL_STEPS}"
for s in "${steps[@]}"; do "step_${s//-/_}"; done
[[ $# -gt 0 ]] || summary
