# shellcheck shell=bash
# Source this file (`source scripts/env.sh`) to use the project's tools by hand: it puts the
# bootstrapped binaries on PATH and sets Pulumi's offline, file-backend settings. The Makefile
# sources it for every target, so `make ...` needs nothing else.
_here="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
export MLP_CACHE="${MLP_CACHE:-$HOME/.cache/mlplatform}"
export PATH="$MLP_CACHE/bin:$_here/.venv/bin:$PATH"
# Go from the machine's toolchain (as scripts/lib.sh): tests read upstream manifests from its
# module cache (`go env GOMODCACHE`), also where a non-login shell has no Go on PATH.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
# Plugins live in our cache, installed by scripts/bootstrap.sh; Pulumi never downloads any.
export PULUMI_HOME="$MLP_CACHE/pulumi-home"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
# State: a local file backend in the checkout (.pulumi-state/, git-ignored) unless you point it
# elsewhere (e.g. a bucket in hosted CI).
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_here/.pulumi-state}"
# Only a file backend is a folder to make; s3://, https:// and the like are left alone.
if [[ $PULUMI_BACKEND_URL == file://* ]]; then mkdir -p "${PULUMI_BACKEND_URL#file://}"; fi
# Secrets in config and state are encrypted with a passphrase. Unless you set one, a random one is
# made once per machine (0600) — it never enters the repo.
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  if [[ ! -s "$MLP_CACHE/pulumi-passphrase" ]]; then
    mkdir -p "$MLP_CACHE" && (umask 077 && head -c 24 /dev/urandom | base64 >"$MLP_CACHE/pulumi-passphrase")
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$MLP_CACHE/pulumi-passphrase"
fi
# The Gateway API CRDs (standard channel) of the pinned version, copied from its Go module by
# `scripts/bootstrap.sh gateway`: one YAML file per CRD, for `kubectl apply --server-side -f`.
export MLP_GATEWAY_API_CRDS="${MLP_GATEWAY_API_CRDS:-$MLP_CACHE/gateway-api/$(source "$_here/scripts/versions.sh" && echo "$GATEWAY_API_VERSION")/standard}"
# The autoscaling add-ons' CRDs and RBAC roles, copied from the pinned KEDA and VPA modules by
# `scripts/bootstrap.sh autoscalers` (YAML files, for `kubectl apply --server-side -f`).
_keda=$(source "$_here/scripts/versions.sh" && echo "$KEDA_VERSION")
_vpa=$(source "$_here/scripts/versions.sh" && echo "$VPA_VERSION")
export MLP_KEDA_CRDS="${MLP_KEDA_CRDS:-$MLP_CACHE/autoscaler-manifests/keda-$_keda/crds}"
export MLP_KEDA_RBAC="${MLP_KEDA_RBAC:-$MLP_CACHE/autoscaler-manifests/keda-$_keda/rbac}"
export MLP_VPA_CRDS="${MLP_VPA_CRDS:-$MLP_CACHE/autoscaler-manifests/vpa-$_vpa/crds}"
export MLP_VPA_RBAC="${MLP_VPA_RBAC:-$MLP_CACHE/autoscaler-manifests/vpa-$_vpa/rbac}"
# The local cluster (scripts/cluster.sh) writes its kubeconfig here.
export MLP_CLUSTER="${MLP_CLUSTER:-mlplatform}"
export KUBECONFIG="${KUBECONFIG:-$HOME/.kwok/clusters/$MLP_CLUSTER/kubeconfig.yaml}"
export DOCKER_BUILDKIT=1
unset _here _keda _vpa
