# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by the scripts that source it
# Names, addresses, ports and folders of one local cluster ($MLP_CLUSTER), so that two clusters
# (`make cluster-up`'s dev cluster and `make test`'s) can be up at once. Sourced, not executed;
# `scripts/cluster.sh env` prints the values.
#
# Each cluster gets a slot S (1 for `mlplatform`, 2 for `mlplatform-test`, else derived from the
# name; override with MLP_CLUSTER_SLOT) and from it:
#   node network   10.(100+S).0.0/24: host bridge .1, node i at .(10+i)
#   pod network    10.(100+S).128.0/17: node i's pods in 10.(100+S).(128+i).0/24
#   registry       localhost:(5000+S) on the host, http://10.(100+S).0.1:(5000+S) from the nodes
# The Service network (10.96.0.0/16) is virtual: kube-proxy implements it inside each node.

: "${MLP_CLUSTER:=mlplatform}"
case $MLP_CLUSTER in
  mlplatform) _slot=1 ;;
  mlplatform-test) _slot=2 ;;
  *) _slot=$(( $(cksum <<<"$MLP_CLUSTER" | cut -d' ' -f1) % 90 + 10 )) ;;
esac
MLP_SLOT=${MLP_CLUSTER_SLOT:-$_slot}
unset _slot
MLP_REAL_NODES=${MLP_REAL_NODES:-3}

NET_PREFIX="10.$((100 + MLP_SLOT))"
NODE_SUBNET="$NET_PREFIX.0.0/24"
BRIDGE_IP="$NET_PREFIX.0.1"
CLUSTER_CIDR="$NET_PREFIX.128.0/17"
SERVICE_CIDR="10.96.0.0/16"
KUBERNETES_SERVICE_IP="10.96.0.1"
CLUSTER_DOMAIN="cluster.local"
# Interface names are limited to 15 characters: mlp<S>br, mlp<S>n<i>.
BRIDGE="mlp${MLP_SLOT}br"
REGISTRY_PORT=$((5000 + MLP_SLOT))
REGISTRY="localhost:$REGISTRY_PORT"
# The gateway on loopback: 127.0.0.1:(9080+S) forwards to the gateway Service's NodePort (the
# dev stack fixes it at 30080) on the first real node, as kind's extraPortMappings do.
GATEWAY_PORT=$((9080 + MLP_SLOT))
GATEWAY_NODE_PORT=30080
# Rules we add to the host's iptables carry this comment; cluster-down removes exactly those.
RULE_TAG="mlplatform:$MLP_CLUSTER"

# Node state lives on the root filesystem (overlayfs snapshots, kubelet volumes); sockets and
# runtime state under /run; logs in the cache next to bootstrap's, kept after cluster-down.
CLUSTER_STATE="/var/lib/mlplatform/$MLP_CLUSTER"
CLUSTER_RUN="/run/mlplatform/$MLP_CLUSTER"
CLUSTER_LOGS="${MLP_LOGS:-${MLP_CACHE:-$HOME/.cache/mlplatform}/logs}/clusters/$MLP_CLUSTER"
CLUSTER_PKI="$HOME/.kwok/clusters/$MLP_CLUSTER/pki"
# A cgroup per node under this root, in every cgroup v1 hierarchy.
CGROUP_PARENT="mlplatform/$MLP_CLUSTER"

node_name() { echo "$MLP_CLUSTER-node-$1"; }
node_ip() { echo "$NET_PREFIX.0.$((10 + $1))"; }
node_pod_cidr() { echo "$NET_PREFIX.$((128 + $1)).0/24"; }
node_netns() { node_name "$1"; }
node_veth() { echo "mlp${MLP_SLOT}n$1"; }
node_zone() { echo "zone-$(( ($1 - 1) % 3 + 1 ))"; }
