#!/usr/bin/env bash
# scripts/cluster.sh up|recreate|down|status — the local Kubernetes cluster: real etcd, kube-apiserver
# (RBAC and admission on, so Pod Security Admission enforces namespace labels),
# kube-controller-manager and kube-scheduler from `make bootstrap`, with KWOK simulating nodes,
# pods (they become Ready) and kubelet resource metrics (metrics-server serves them to the HPA).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/scripts/env.sh"

CPU_NODES="${MLP_CPU_NODES:-3}"

need() { [[ -x "$MLP_BIN/$1" ]] || { echo "$1 missing in $MLP_BIN: run 'make bootstrap'" >&2; exit 1; }; }

# The default CPU node pool: plain KWOK nodes. GPU nodes are the GpuNodePool component's job.
cpu_nodes() {
  local i
  for i in $(seq 1 "$CPU_NODES"); do cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: cpu-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    # metrics-server asks this path (KWOK serves each node's kubelet metrics under its name).
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/cpu-$i/metrics/resource
  labels:
    kubernetes.io/hostname: cpu-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    type: kwok
    mlplatform.io/pool: cpu
    topology.kubernetes.io/zone: zone-$(( (i - 1) % 3 + 1 ))
status:
  allocatable: {cpu: "8", memory: 32Gi, pods: "110"}
  capacity: {cpu: "8", memory: 32Gi, pods: "110"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake}
YAML
  done
}

# Simulated storage: KWOK runs no volume provisioner, so cluster-up provides a default StorageClass
# (no provisioner, immediate binding) and a few pre-made volumes; the real PV controller binds
# claims to them, so pods with PVCs schedule and batch Jobs complete.
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
  labels: {mlplatform.io/simulated: "true"}
spec:
  storageClassName: local
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce, ReadOnlyMany, ReadWriteMany]
  persistentVolumeReclaimPolicy: Recycle
  hostPath: {path: /tmp/mlplatform-pv-$i}
YAML
  done
}

up() {
  for b in kube-apiserver kube-controller-manager kube-scheduler kwok kwokctl etcd metrics-server kubectl; do need "$b"; done
  if kwokctl get clusters 2>/dev/null | grep -qx "$MLP_CLUSTER" && kubectl get --raw /readyz >/dev/null 2>&1; then
    progress "cluster $MLP_CLUSTER already up"
  else
    kwokctl delete cluster --name "$MLP_CLUSTER" >/dev/null 2>&1 || true
    progress "cluster: creating $MLP_CLUSTER (log: $MLP_LOGS/cluster-up.log)"
    kwokctl create cluster --name "$MLP_CLUSTER" --runtime binary \
      --kube-apiserver-binary "$MLP_BIN/kube-apiserver" \
      --kube-controller-manager-binary "$MLP_BIN/kube-controller-manager" \
      --kube-scheduler-binary "$MLP_BIN/kube-scheduler" \
      --kwok-controller-binary "$MLP_BIN/kwok" \
      --etcd-binary "$(readlink -f "$MLP_BIN/etcd")" \
      --enable-metrics-server --metrics-server-binary "$MLP_BIN/metrics-server" \
      --kube-authorization --kube-admission \
      --config "$REPO_ROOT/scripts/kwok/metrics.yaml" \
      --kubeconfig "" --wait 120s >"$MLP_LOGS/cluster-up.log" 2>&1 ||
      { tail -n 30 "$MLP_LOGS/cluster-up.log"; echo "cluster-up failed; full log: $MLP_LOGS/cluster-up.log" >&2; exit 1; }
  fi
  progress "cluster: default StorageClass 'local' and 6 volumes"
  storage | kubectl apply -f - >/dev/null
  progress "cluster: default CPU pool ($CPU_NODES nodes)"
  cpu_nodes | kubectl apply -f - >/dev/null
  kubectl wait --for=condition=Ready node -l mlplatform.io/pool=cpu --timeout=60s >/dev/null
  status
}

status() {
  echo "cluster:    $MLP_CLUSTER (kwokctl, runtime binary)"
  echo "kubeconfig: $KUBECONFIG"
  echo "server:     $(kubectl get --raw /version | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')"
  kubectl get nodes -o wide --no-headers | awk '{printf "node:       %-12s %-8s %s\n", $1, $2, $5}'
}

case "${1:-status}" in
  up) up ;;
  recreate) kwokctl delete cluster --name "$MLP_CLUSTER" >/dev/null 2>&1 || true; up ;;
  down) kwokctl delete cluster --name "$MLP_CLUSTER" && progress "cluster $MLP_CLUSTER deleted" ;;
  status) status ;;
  *) echo "usage: $0 up|recreate|down|status" >&2; exit 2 ;;
esac
