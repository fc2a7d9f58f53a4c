#!/usr/bin/env bash
# scripts/cluster.sh up|recreate|down|status|env — the local Kubernetes cluster: real etcd,
# kube-apiserver (RBAC and admission on, so Pod Security Admission enforces namespace labels),
# kube-controller-manager, kube-scheduler and metrics-server from `make bootstrap`; real worker
# nodes (kubelet + containerd + CNI + kube-proxy, scripts/nodes.sh) that run the model pods and
# pull from a local registry; and KWOK nodes that simulate the GPU pool and the scale benchmarks'
# nodes (pods on them become Ready, no container runs).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/scripts/env.sh"
source "$REPO_ROOT/scripts/cluster-layout.sh"

# Simulated CPU nodes, for the scale benchmarks. Beside real nodes they are tainted, so only pods
# that ask land there; a cluster without real nodes (MLP_REAL_NODES=0, e.g. for bench_iac's
# hundreds of pods) schedules onto them freely.
SIM_CPU_NODES="${MLP_SIM_CPU_NODES:-3}"
SIMULATED_TAINT="node.mlplatform.io/simulated"

need() { [[ -x "$MLP_BIN/$1" ]] || { echo "$1 missing in $MLP_BIN: run 'make bootstrap'" >&2; exit 1; }; }

# Simulated CPU nodes (KWOK). GPU nodes are the GpuNodePool component's job.
sim_cpu_nodes() {
  local i
  for i in $(seq 1 "$SIM_CPU_NODES"); do cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: sim-cpu-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    # metrics-server asks this path (KWOK serves each node's kubelet metrics under its name).
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/sim-cpu-$i/metrics/resource
  labels:
    kubernetes.io/hostname: sim-cpu-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    type: kwok
    node.mlplatform.io/kind: simulated
    mlplatform.io/pool: sim-cpu
    topology.kubernetes.io/zone: zone-$(( (i - 1) % 3 + 1 ))
spec:
  taints: $( ((MLP_REAL_NODES > 0)) && echo "[{key: $SIMULATED_TAINT, value: \"true\", effect: NoSchedule}]" || echo "[]")
status:
  allocatable: {cpu: "8", memory: 32Gi, pods: "110"}
  capacity: {cpu: "8", memory: 32Gi, pods: "110"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake}
YAML
  done
}

# Storage: no volume provisioner runs, so cluster-up provides a default StorageClass (no
# provisioner, immediate binding) and a few pre-made hostPath volumes under the cluster's state
# folder; the real PV controller binds claims to them, and pods on real nodes read and write them.
storage() {
  cat <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
reclaimPolicy: Retain
YAML
  local i
  for i in $(seq 1 6); do cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv-$i
  labels: {mlplatform.io/local-volume: "true"}
spec:
  storageClassName: local
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce, ReadOnlyMany, ReadWriteMany]
  # Recycle would run a scrubber pod whose image no node here can pull; cluster-up frees
  # released volumes instead (release_volumes).
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $CLUSTER_STATE/volumes/pv-$i, type: DirectoryOrCreate}
YAML
  done
}

# kwokctl's options for this cluster. The apiserver certificate covers the node-facing address
# and the `kubernetes` Service IP, so kubelets and in-cluster clients verify TLS; the apiserver
# reaches kubelets by InternalIP with a client certificate and checks their serving certificates
# against the cluster CA; KWOK manages only the nodes annotated as fake, never the real ones.
kwokctl_config() {
  cat <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  kubeApiserverCertSANs: [$BRIDGE_IP, $KUBERNETES_SERVICE_IP]
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: advertise-address, value: $BRIDGE_IP}
  - {key: service-cluster-ip-range, value: $SERVICE_CIDR}
  - {key: kubelet-preferred-address-types, value: "InternalIP,Hostname"}
  - {key: kubelet-client-certificate, value: $CLUSTER_PKI/admin.crt}
  - {key: kubelet-client-key, value: $CLUSTER_PKI/admin.key}
  - {key: kubelet-certificate-authority, value: $CLUSTER_PKI/ca.crt}
$(aggregator_routing)
# One instance each, so no leader election: under load a missed lease renewal makes them exit
# ("leaderelection lost"), and kwokctl's binary runtime does not restart them.
- name: kube-scheduler
  extraArgs:
  - {key: leader-elect, value: "false"}
- name: kube-controller-manager
  extraArgs:
  - {key: leader-elect, value: "false"}
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
YAML
}

# With real nodes, aggregated APIs (KEDA's external metrics) and admission webhooks (KEDA's, the
# VPA's) run in pods, and the API server must call them at their pods' addresses: this host
# reaches pod networks but never Service addresses (the Service range is blackholed here).
aggregator_routing() {
  ((MLP_REAL_NODES > 0)) || return 0
  echo '  - {key: enable-aggregator-routing, value: "true"}'
}

# That routing resolves an APIService's Service through its endpoints and refuses ExternalName
# Services, which is how kwokctl exposes its metrics-server (a host process, as 'localhost'): give
# it a headless Service whose one endpoint is this host's bridge address instead.
metrics_server_endpoint() {
  ((MLP_REAL_NODES > 0)) || return 0
  [[ $(kubectl -n kube-system get service metrics-server -o jsonpath='{.spec.type}' 2>/dev/null) == ExternalName ]] || return 0
  local port; port=$(kubectl get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.spec.service.port}')
  kubectl -n kube-system delete service metrics-server >/dev/null
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system, labels: {app.kubernetes.io/managed-by: mlplatform-cluster}}
spec:
  clusterIP: None
  ports: [{name: https, port: $port, targetPort: $port}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: metrics-server, namespace: kube-system, labels: {app.kubernetes.io/managed-by: mlplatform-cluster}}
subsets:
- addresses: [{ip: $BRIDGE_IP}]
  ports: [{name: https, port: $port}]
YAML
  progress "cluster: metrics-server reached at $BRIDGE_IP:$port (aggregator routing)"
}

# kwokctl starts metrics-server right after the API server's process, without waiting for it to
# listen, and metrics-server panics at start when the API server refuses it (seen twice in a row in
# one CI run under load, so restarting the control plane does not cure it). kwokctl runs this
# instead: it waits for the API server's /readyz (at most 120 s), then becomes metrics-server
# (exec: kwokctl's pid file names metrics-server itself). Without --kubeconfig (kwokctl asking the
# version) it execs at once.
METRICS_SERVER_WRAPPER="$MLP_CACHE/kwok/metrics-server-after-apiserver"
metrics_server_after_apiserver() {
  cat <<SH
#!/usr/bin/env bash
kubeconfig=
for arg; do [[ \$arg == --kubeconfig=* ]] && kubeconfig=\${arg#--kubeconfig=}; done
if [[ -n \$kubeconfig ]]; then
  for _ in \$(seq 120); do
    "$MLP_BIN/kubectl" --kubeconfig "\$kubeconfig" get --raw /readyz >/dev/null 2>&1 && break
    sleep 1
  done
fi
exec "$MLP_BIN/metrics-server" "\$@"
SH
}

control_plane_up() {
  # grep reads the whole list (not -q): under pipefail, kwokctl killed by SIGPIPE after an early
  # match would read as "no such cluster", and a running control plane would be recreated.
  if kwokctl get clusters 2>/dev/null | grep -x "$MLP_CLUSTER" >/dev/null && kubectl get --raw /readyz >/dev/null 2>&1; then
    progress "cluster $MLP_CLUSTER: control plane already up"
    return 0
  fi
  kwokctl delete cluster --name "$MLP_CLUSTER" >/dev/null 2>&1 || true
  progress "cluster: creating $MLP_CLUSTER (log: $MLP_LOGS/cluster-up.log)"
  local conf; conf=$(mktemp --suffix .yaml)
  kwokctl_config >"$conf"
  # Written aside and renamed: another cluster's metrics-server may be starting from it.
  mkdir -p "$(dirname "$METRICS_SERVER_WRAPPER")"
  metrics_server_after_apiserver >"$METRICS_SERVER_WRAPPER.$$"
  chmod +x "$METRICS_SERVER_WRAPPER.$$"
  mv -f "$METRICS_SERVER_WRAPPER.$$" "$METRICS_SERVER_WRAPPER"
  kwokctl create cluster --name "$MLP_CLUSTER" --runtime binary \
    --kube-apiserver-binary "$MLP_BIN/kube-apiserver" \
    --kube-controller-manager-binary "$MLP_BIN/kube-controller-manager" \
    --kube-scheduler-binary "$MLP_BIN/kube-scheduler" \
    --kwok-controller-binary "$MLP_BIN/kwok" \
    --etcd-binary "$(readlink -f "$MLP_BIN/etcd")" \
    --enable-metrics-server --metrics-server-binary "$METRICS_SERVER_WRAPPER" \
    --kube-authorization --kube-admission \
    --config "$REPO_ROOT/scripts/kwok/metrics.yaml" --config "$conf" \
    --kubeconfig "" --wait 120s >"$MLP_LOGS/cluster-up.log" 2>&1 ||
    { rm -f "$conf"; tail -n 30 "$MLP_LOGS/cluster-up.log"
      echo "cluster-up failed; full log: $MLP_LOGS/cluster-up.log" >&2; exit 1; }
  rm -f "$conf"
  # kwokctl starts each component once and never again: one that exits at start stays down for
  # the cluster's life (a dead metrics-server stalls every HPA and namespace deletion). Restart
  # the control plane once if so.
  sleep 2
  local dead; dead=$(dead_components)
  [[ -z $dead ]] && return 0
  progress "cluster: exited at start: $dead (logs: $HOME/.kwok/clusters/$MLP_CLUSTER/logs); restarting the control plane"
  { kwokctl stop cluster --name "$MLP_CLUSTER" && kwokctl start cluster --name "$MLP_CLUSTER" --wait 120s; } \
    >>"$MLP_LOGS/cluster-up.log" 2>&1 || true
  sleep 2
  dead=$(dead_components)
  [[ -z $dead ]] && return 0
  echo "cluster-up failed: $dead did not stay up; see $HOME/.kwok/clusters/$MLP_CLUSTER/logs" >&2
  exit 1
}

# Names of the control-plane processes kwokctl started (its pid files) that are not running; an
# exited one may linger as a zombie (this machine's init does not reap), which `kill -0` misses.
dead_components() {
  local pidfile state out=()
  for pidfile in "$HOME/.kwok/clusters/$MLP_CLUSTER"/pids/*.pid; do
    [[ -e $pidfile ]] || continue
    state=$(ps -o stat= -p "$(cat "$pidfile")" 2>/dev/null || true)
    [[ -n $state && $state != Z* ]] || out+=("$(basename "$pidfile" .pid)")
  done
  echo "${out[*]}"
}

# A volume whose claim was deleted stays Released (reclaim policy Retain): empty it and drop the
# claim reference, so it can be bound again — what a provisioner's Delete would give.
release_volumes() {
  local pv path
  for pv in $(kubectl get pv -l mlplatform.io/local-volume -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{" "}{end}' 2>/dev/null); do
    path=$(kubectl get pv "$pv" -o jsonpath='{.spec.hostPath.path}')
    [[ $path == "$CLUSTER_STATE"/volumes/* ]] && find "$path" -mindepth 1 -delete
    kubectl patch pv "$pv" --type json -p '[{"op": "remove", "path": "/spec/claimRef"}]' >/dev/null
    progress "cluster: volume $pv released and emptied"
  done
}

up() {
  for b in kube-apiserver kube-controller-manager kube-scheduler kwok kwokctl etcd metrics-server kubectl; do need "$b"; done
  control_plane_up
  release_volumes
  progress "cluster: default StorageClass 'local' and 6 volumes"
  # Real pods write there as their own (non-root) user; hostPath ignores fsGroup.
  local v; for v in $(seq 1 6); do mkdir -p "$CLUSTER_STATE/volumes/pv-$v"; chmod 1777 "$CLUSTER_STATE/volumes/pv-$v"; done
  storage | kubectl apply -f - >/dev/null
  progress "cluster: $MLP_REAL_NODES real nodes, registry $REGISTRY (logs: $CLUSTER_LOGS)"
  "$REPO_ROOT/scripts/nodes.sh" up
  metrics_server_endpoint
  if ((SIM_CPU_NODES > 0)); then
    progress "cluster: $SIM_CPU_NODES simulated CPU nodes (tainted $SIMULATED_TAINT)"
    sim_cpu_nodes | kubectl apply -f - >/dev/null
    kubectl wait --for=condition=Ready node -l node.mlplatform.io/kind=simulated --timeout=60s >/dev/null
  fi
  status
}

down() {
  "$REPO_ROOT/scripts/nodes.sh" down
  kwokctl delete cluster --name "$MLP_CLUSTER" >/dev/null 2>&1 || true
  progress "cluster $MLP_CLUSTER deleted"
}

status() {
  echo "cluster:    $MLP_CLUSTER (kwokctl, runtime binary; slot $MLP_SLOT)"
  echo "kubeconfig: $KUBECONFIG"
  echo "server:     $(kubectl get --raw /version | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')"
  # Real nodes run containers; simulated ones (KWOK: the GPU pool, sim-cpu-*) only pretend to.
  kubectl get nodes -o custom-columns='NODE:.metadata.name,KIND:.metadata.labels.node\.mlplatform\.io/kind,READY:.status.conditions[?(@.type=="Ready")].status,KUBELET:.status.nodeInfo.kubeletVersion,RUNTIME:.status.nodeInfo.containerRuntimeVersion,IP:.status.addresses[?(@.type=="InternalIP")].address' |
    sed 's/^/  /'
  "$REPO_ROOT/scripts/nodes.sh" status
}

env_vars() {
  local v
  for v in MLP_CLUSTER MLP_SLOT REGISTRY REGISTRY_PORT BRIDGE BRIDGE_IP NODE_SUBNET CLUSTER_CIDR \
           SERVICE_CIDR CLUSTER_STATE CLUSTER_RUN CLUSTER_LOGS MLP_REAL_NODES GATEWAY_PORT \
           GATEWAY_NODE_PORT KUBECONFIG; do
    printf '%s=%s\n' "$v" "${!v}"
  done
}

case "${1:-status}" in
  up) up ;;
  recreate) down; up ;;
  down) down ;;
  status) status ;;
  env) env_vars ;;
  *) echo "usage: $0 up|recreate|down|status|env" >&2; exit 2 ;;
esac
