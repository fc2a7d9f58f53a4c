#!/usr/bin/env bash
# scripts/nodes.sh up|down|status — the real worker nodes of the local cluster, beside KWOK's
# simulated ones. Called by scripts/cluster.sh (after the control plane is up, before it goes).
#
# A node is a network namespace with its own IP on a host bridge, its own containerd (root, state,
# socket), kubelet, kube-proxy (iptables mode) and kube-network-policies (NetworkPolicy
# enforcement), and a cgroup under mlplatform/<cluster>/. Every process is started here, its pid
# written under $CLUSTER_RUN/pids, and stopped by that pid.
# Names, addresses and folders come from scripts/cluster-layout.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/scripts/env.sh"
source "$REPO_ROOT/scripts/versions.sh"
source "$REPO_ROOT/scripts/cluster-layout.sh"

PIDS="$CLUSTER_RUN/pids"

need() { [[ -x "$MLP_BIN/$1" ]] || { echo "$1 missing in $MLP_BIN: run 'make bootstrap'" >&2; exit 1; }; }

# ---------------------------------------------------------------- processes, by pid only

# start_host NAME CMD...: run CMD detached unless NAME is running, logging to
# $CLUSTER_LOGS/NAME.log; setsid execs, so the pid recorded is the program's own.
start_host() {
  local name=$1; shift
  if alive "$name"; then return 0; fi
  setsid nohup "$@" >>"$CLUSTER_LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

# start NAME NETNS CMD...: the same in a node's network namespace. nsenter (not `ip netns exec`,
# which remounts /sys and hides the cgroup v1 hierarchies) execs too.
start() {
  local name=$1 ns=$2; shift 2
  start_host "$name" nsenter --net="/run/netns/$ns" -- "$@"
}

# wait_http URL NAME: wait up to 10 s for URL to answer; else name the process and its log.
wait_http() {
  local _
  for _ in $(seq 50); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "$2 did not answer on $1; see $CLUSTER_LOGS/$2.log" >&2
  tail -n 20 "$CLUSTER_LOGS/$2.log" >&2
  return 1
}

# put FILE < CONTENT: write FILE only when its content changes (kube-proxy exits when its config
# file is touched); the process NAME using it, if given and running, is restarted on a change.
put() {
  local file=$1 name=${2:-} tmp
  tmp=$(mktemp "$file.XXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$file"; then rm -f "$tmp"; return 0; fi
  mv "$tmp" "$file"
  if [[ -n $name ]] && alive "$name"; then stop "$name"; fi
}

alive() { [[ -f $PIDS/$1.pid ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# stop NAME: SIGTERM, then SIGKILL after 20 s, by the recorded pid.
stop() {
  local f="$PIDS/$1.pid" pid i
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# ---------------------------------------------------------------- network

iptables_tagged() { # TABLE CHAIN RULE...: add RULE (tagged) once, at the top of CHAIN
  local table=$1 chain=$2; shift 2
  iptables -t "$table" -C "$chain" "$@" -m comment --comment "$RULE_TAG" 2>/dev/null ||
    iptables -t "$table" -I "$chain" 1 "$@" -m comment --comment "$RULE_TAG"
}

net_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  sysctl -qw net.ipv4.ip_forward=1
  # Docker sets the host's FORWARD policy to DROP: let traffic between nodes (and their pods)
  # cross our bridge.
  iptables_tagged filter FORWARD -i "$BRIDGE" -j ACCEPT
  iptables_tagged filter FORWARD -o "$BRIDGE" -j ACCEPT
  # Service addresses exist only as kube-proxy's rules inside the nodes. Without them (a node
  # whose kube-proxy is down), a packet to a ClusterIP would follow the default route to the
  # host and out: the host drops the whole Service range instead (shared by every cluster).
  ip route show type blackhole | grep -q "^blackhole $SERVICE_CIDR" ||
    ip route add blackhole "$SERVICE_CIDR"
  local i ns veth
  for i in $(seq 1 "$MLP_REAL_NODES"); do
    ns=$(node_netns "$i") veth=$(node_veth "$i")
    [[ -e /run/netns/$ns ]] || ip netns add "$ns"
    if ! ip link show "$veth" >/dev/null 2>&1; then
      ip link add "$veth" type veth peer name eth0 netns "$ns"
      ip link set "$veth" master "$BRIDGE" up
    fi
    in_ns "$ns" ip link set lo up
    in_ns "$ns" ip addr replace "$(node_ip "$i")/24" dev eth0
    in_ns "$ns" ip link set eth0 up
    in_ns "$ns" ip route replace default via "$BRIDGE_IP"
    in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
    # The host routes each node's pod range to the node; nodes reach each other's pods through
    # the host (their default route), so a node needs no route per peer.
    ip route replace "$(node_pod_cidr "$i")" via "$(node_ip "$i")" dev "$BRIDGE"
  done
}

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }

net_down() {
  local i ns
  for i in $(seq 1 "$MLP_REAL_NODES"); do
    ns=$(node_netns "$i")
    [[ -e /run/netns/$ns ]] && ip netns del "$ns"
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  local table rule
  for table in filter nat; do
    # Rules are listed as `-A CHAIN ...`; each tagged one is deleted by its own spec.
    { iptables -t "$table" -S | grep -F -- "--comment \"$RULE_TAG\"" || true; } | sed 's/^-A /-D /' |
      while read -r rule; do eval "iptables -t $table $rule"; done
  done
  return 0
}

# ---------------------------------------------------------------- certificates

# sign NAME CN ORG SANS EKU: a key and a certificate signed by the cluster CA (kwokctl's), in the
# node PKI folder. SANS is an openssl subjectAltName value or empty.
sign() {
  local dir=$1 name=$2 cn=$3 org=$4 sans=$5 eku=$6 ext
  [[ -s $dir/$name.crt ]] && return 0
  ext=$(mktemp)
  { echo "keyUsage=critical,digitalSignature,keyEncipherment"; echo "extendedKeyUsage=$eku"
    [[ -z $sans ]] || echo "subjectAltName=$sans"; } >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/$name.key" \
    -subj "/CN=$cn${org:+/O=$org}" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$CLUSTER_PKI/ca.crt" -CAkey "$CLUSTER_PKI/ca.key" \
    -CAcreateserial -CAserial "$dir/ca.srl" -days 365 -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$ext" "$dir/$name.csr"
  chmod 600 "$dir/$name.key"
}

kubeconfig() { # FILE USER CERT KEY
  # The apiserver's port is read from the admin kubeconfig once, not per file.
  : "${apiserver_url:=https://$BRIDGE_IP:$(apiserver_port)}"
  put "$1" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: $MLP_CLUSTER, cluster: {server: "$apiserver_url", certificate-authority: "$CLUSTER_PKI/ca.crt"}}]
users: [{name: $2, user: {client-certificate: "$3", client-key: "$4"}}]
contexts: [{name: default, context: {cluster: $MLP_CLUSTER, user: $2}}]
current-context: default
YAML
}

apiserver_port() { kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://'; }

# ---------------------------------------------------------------- one node

cgroups_up() { # CGROUP: create it in every v1 hierarchy; cpuset needs cpus/mems set per level
  local h path parent
  for h in /sys/fs/cgroup/*/; do
    h=${h%/}
    [[ -L $h ]] && continue
    path=$h
    for part in ${1//\// }; do
      parent=$path path=$path/$part
      mkdir -p "$path"
      if [[ -f $path/cpuset.cpus && -z $(cat "$path/cpuset.cpus") ]]; then
        cat "$parent/cpuset.cpus" >"$path/cpuset.cpus"
        cat "$parent/cpuset.mems" >"$path/cpuset.mems"
      fi
    done
  done
}

cgroups_down() { # remove the cluster's cgroups, deepest first, in every hierarchy
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h$CGROUP_PARENT ]] || continue
    find "$h$CGROUP_PARENT" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  for h in /sys/fs/cgroup/*/; do rmdir "${h}mlplatform" 2>/dev/null || true; done
}

node_up() {
  local i=$1 name ip ns dir run
  name=$(node_name "$i") ip=$(node_ip "$i") ns=$(node_netns "$i")
  dir="$CLUSTER_STATE/nodes/$name" run="$CLUSTER_RUN/nodes/$name"
  mkdir -p "$dir"/{pki,cni/net.d,cni/ipam,kubelet,containerd,pod-logs,opt} "$run"
  cgroups_up "$CGROUP_PARENT/$name"

  sign "$dir/pki" kubelet-client "system:node:$name" system:nodes "" clientAuth
  sign "$dir/pki" kubelet-serving "$name" "" "IP:$ip,DNS:$name" serverAuth
  kubeconfig "$dir/kubelet.kubeconfig" "system:node:$name" "$dir/pki/kubelet-client.crt" "$dir/pki/kubelet-client.key"
  kubeconfig "$dir/kube-proxy.kubeconfig" system:kube-proxy "$CLUSTER_STATE/pki/kube-proxy.crt" "$CLUSTER_STATE/pki/kube-proxy.key"
  kubeconfig "$dir/netpol.kubeconfig" mlplatform:kube-network-policies "$CLUSTER_STATE/pki/netpol.crt" "$CLUSTER_STATE/pki/netpol.key"

  put "$dir/containerd.toml" "containerd-$i" <<TOML
version = 2
root = "$dir/containerd"
state = "$run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$run/containerd.sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REGISTRY/pause:$PAUSE_VERSION"
  # These machines lack CAP_SYS_RESOURCE: runc may not set a negative oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY"]
    endpoint = ["http://$BRIDGE_IP:$REGISTRY_PORT"]
TOML

  # No masquerading: pod source addresses stay visible to NetworkPolicy and to the host, which
  # routes every pod range back to its node.
  put "$dir/cni/net.d/10-mlplatform.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "mlplatform", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam",
            "ranges": [[{"subnet": "$(node_pod_cidr "$i")"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON

  put "$dir/kubelet.yaml" "kubelet-$i" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$CLUSTER_PKI/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$dir/pki/kubelet-serving.crt"
tlsPrivateKeyFile: "$dir/pki/kubelet-serving.key"
containerRuntimeEndpoint: "unix://$run/containerd.sock"
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_PARENT/$name
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
oomScoreAdj: 0
failSwapOn: false
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$BRIDGE_IP]
resolvConf: "$CLUSTER_STATE/resolv.conf"
podLogsDir: "$dir/pod-logs"
serializeImagePulls: false
maxPods: 110
# The nodes share the host's disk with builds and caches: a percentage of a large disk (5% of
# 250 GB) would evict every pod while gigabytes are still free, so the floors are absolute.
evictionHard: {memory.available: 200Mi, nodefs.available: 2Gi, imagefs.available: 2Gi}
YAML

  put "$dir/kube-proxy.yaml" "kube-proxy-$i" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$dir/kube-proxy.kubeconfig"}
mode: iptables
hostnameOverride: $name
bindAddress: $ip
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: $ip:10256
metricsBindAddress: $ip:10249
nodePortAddresses: ["$ip/32"]
# The conntrack table size and timeouts are host-wide sysctls: leave them to the host.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML

  start "containerd-$i" "$ns" containerd --config "$dir/containerd.toml"
  local _
  for _ in $(seq 100); do [[ -S $run/containerd.sock ]] && break; sleep 0.1; done
  start "kubelet-$i" "$ns" "$MLP_BIN/kubelet" --config "$dir/kubelet.yaml" \
    --kubeconfig "$dir/kubelet.kubeconfig" --hostname-override "$name" --node-ip "$ip" \
    --root-dir "$dir/kubelet" --cert-dir "$dir/pki" --v=1 \
    --node-labels "node.mlplatform.io/kind=real,mlplatform.io/pool=cpu,topology.kubernetes.io/zone=$(node_zone "$i")"
  start "kube-proxy-$i" "$ns" "$MLP_BIN/kube-proxy" --config "$dir/kube-proxy.yaml" --v=1
  # NetworkPolicies: the first packet of each new connection to or from a local pod that a policy
  # selects goes to netfilter queue 100 in this node's namespace; the verdict comes from the
  # policies. SIGTERM (stop) makes it delete its nftables table before it exits.
  start "netpol-$i" "$ns" "$MLP_BIN/kube-network-policies" --kubeconfig "$dir/netpol.kubeconfig" \
    --hostname-override "$name" --nfqueue-id 100 --metrics-bind-address "$ip:9080" --v=1
}

# ---------------------------------------------------------------- the registry

registry_up() {
  mkdir -p "$CLUSTER_STATE/registry"
  put "$CLUSTER_STATE/registry.yaml" registry <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: "$CLUSTER_STATE/registry"}
  delete: {enabled: true}
http:
  # Docker pushes to localhost:$REGISTRY_PORT, the nodes pull from $BRIDGE_IP:$REGISTRY_PORT.
  addr: 0.0.0.0:$REGISTRY_PORT
YAML
  start_host registry docker-registry serve "$CLUSTER_STATE/registry.yaml"
  wait_http "http://127.0.0.1:$REGISTRY_PORT/v2/" registry
}

# binary_image REPO TAG BINARY UID: a one-binary image (FROM scratch) of a static binary that
# bootstrap built, pushed to this cluster's registry once. The pod sandbox (pause) and the
# in-cluster Prometheus are made this way: nothing is pulled from outside the machine.
binary_image() {
  local repo=$1 tag=$2 bin=$3 uid=$4 tmp name
  curl -fs -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/$repo/manifests/$tag" && return 0
  "$REPO_ROOT/scripts/docker.sh" start >/dev/null
  tmp=$(mktemp -d) name=$(basename "$bin")
  mkdir -p "$tmp/bin" "$tmp/tmp" && chmod 1777 "$tmp/tmp"
  cp "$(readlink -f "$bin")" "$tmp/bin/$name"
  tar -C "$tmp" -c --owner=0 --group=0 bin tmp |
    docker import --change "ENTRYPOINT [\"/bin/$name\"]" --change "USER $uid:$uid" - "$REGISTRY/$repo:$tag" >/dev/null
  rm -rf "$tmp"
  docker push -q "$REGISTRY/$repo:$tag" >/dev/null
  progress "nodes: pushed $REGISTRY/$repo:$tag"
}

# ---------------------------------------------------------------- cluster DNS

# CoreDNS on the host, on the bridge address the kubelets give pods as their nameserver: Service
# and pod names from the API server (read with its own read-only identity), the rest forwarded
# to the host's resolver.
dns_up() {
  local dir="$CLUSTER_STATE/dns"
  mkdir -p "$dir"
  sign "$dir" coredns mlplatform:coredns "" "" clientAuth
  kubeconfig "$dir/kubeconfig" mlplatform:coredns "$dir/coredns.crt" "$dir/coredns.key"
  kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "mlplatform:coredns"}
rules:
- {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "mlplatform:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "mlplatform:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "mlplatform:coredns"}]
YAML
  put "$dir/Corefile" coredns <<COREFILE
.:53 {
    bind $BRIDGE_IP
    errors
    health $BRIDGE_IP:8080
    ready $BRIDGE_IP:8181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $dir/kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus $BRIDGE_IP:9153
    forward . $CLUSTER_STATE/resolv.conf
    cache 30
    loop
    loadbalance
}
COREFILE
  start_host coredns "$MLP_BIN/coredns" -conf "$dir/Corefile"
  wait_http "http://$BRIDGE_IP:8181/ready" coredns
}

# ---------------------------------------------------------------- NetworkPolicy enforcement

# kube-network-policies reads policies, pods and namespaces with its own identity (a client
# certificate, as kube-proxy's) and records events.
netpol_rbac() {
  sign "$CLUSTER_STATE/pki" netpol mlplatform:kube-network-policies "" "" clientAuth
  kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "mlplatform:kube-network-policies"}
rules:
- {apiGroups: [""], resources: [pods, namespaces], verbs: [list, watch]}
- {apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [list, watch]}
- {apiGroups: ["", events.k8s.io], resources: [events], verbs: [create, patch, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "mlplatform:kube-network-policies"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "mlplatform:kube-network-policies"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "mlplatform:kube-network-policies"}]
YAML
}

# ---------------------------------------------------------------- the gateway on loopback

# 127.0.0.1:GATEWAY_PORT on the host -> the gateway's NodePort on node 1 (kube-proxy there sends
# it on to a gateway pod on any node). Bound to loopback only; refused until a stack deploys the
# gateway.
gateway_forward() {
  ((MLP_REAL_NODES > 0)) || return 0
  start_host gateway-forward socat "TCP-LISTEN:$GATEWAY_PORT,bind=127.0.0.1,reuseaddr,fork" \
    "TCP:$(node_ip 1):$GATEWAY_NODE_PORT"
}

# ---------------------------------------------------------------- up / down / status

up() {
  local b
  for b in kubelet kube-proxy kube-network-policies crictl pause coredns prometheus traefik kubectl \
           keda-operator keda-adapter keda-webhooks vpa-recommender vpa-updater vpa-admission-controller; do
    need "$b"
  done
  mkdir -p "$PIDS" "$CLUSTER_LOGS" "$CLUSTER_STATE/pki"
  net_up
  registry_up
  binary_image pause "$PAUSE_VERSION" "$MLP_BIN/pause" 65535
  binary_image mlplatform/prometheus "v$PROMETHEUS_VERSION" "$MLP_BIN/prometheus" 65534
  # The gateway's image (Traefik reads the API with its pod's service account; it writes nothing,
  # so it runs as any non-root user with a read-only root filesystem).
  binary_image mlplatform/traefik "v$TRAEFIK_VERSION" "$MLP_BIN/traefik" 65532
  # The autoscaling add-ons, as non-root as upstream's images (KEDA 65532, VPA 65534). Their TLS
  # material comes from Secrets mounted into the pod (KEDA's operator writes its generated
  # certificates into a Secret, not to disk), so the image needs no writable folder beyond /tmp.
  for b in operator adapter webhooks; do
    binary_image "mlplatform/keda-$b" "v$KEDA_VERSION" "$MLP_BIN/keda-$b" 65532
  done
  for b in recommender updater admission-controller; do
    binary_image "mlplatform/vpa-$b" "v$VPA_VERSION" "$MLP_BIN/vpa-$b" 65534
  done
  # The host's resolver without its search domains: upstream of cluster DNS, and what pods with
  # dnsPolicy Default get.
  grep -v '^search' /etc/resolv.conf | put "$CLUSTER_STATE/resolv.conf"
  dns_up
  sign "$CLUSTER_STATE/pki" kube-proxy system:kube-proxy "" "" clientAuth
  netpol_rbac
  local i
  for i in $(seq 1 "$MLP_REAL_NODES"); do node_up "$i"; done
  gateway_forward
  progress "nodes: waiting for $MLP_REAL_NODES real nodes to be Ready"
  for i in $(seq 1 "$MLP_REAL_NODES"); do
    wait_for_node "$(node_name "$i")" || {
      echo "node $(node_name "$i") not Ready in 120 s; see $CLUSTER_LOGS/kubelet-$i.log" >&2
      tail -n 20 "$CLUSTER_LOGS/kubelet-$i.log" >&2; return 1; }
  done
}

wait_for_node() {
  local _
  for _ in $(seq 120); do
    kubectl get node "$1" >/dev/null 2>&1 && break
    sleep 1
  done
  kubectl wait --for=condition=Ready "node/$1" --timeout=120s >/dev/null
}

down() {
  local i
  mkdir -p "$PIDS"
  # kube-network-policies first: on SIGTERM it deletes its nftables table (the node's namespace,
  # deleted below, would take the table and the queue binding with it anyway).
  for i in $(seq 1 "$MLP_REAL_NODES"); do stop "netpol-$i"; stop "kubelet-$i"; stop "kube-proxy-$i"; done
  for i in $(seq 1 "$MLP_REAL_NODES"); do remove_pods "$i"; stop "containerd-$i"; done
  stop gateway-forward
  stop registry
  stop coredns
  unmount_under "$CLUSTER_STATE" "$CLUSTER_RUN"
  net_down
  cgroups_down
  # The kubelet links each container's log into /var/log/containers (a fixed path); ours point
  # into this cluster's pod-logs folders.
  find /var/log/containers -maxdepth 1 -lname "$CLUSTER_STATE/*" -delete 2>/dev/null || true
  rm -rf "$CLUSTER_STATE" "$CLUSTER_RUN"
  # The shared parents (and the Service range's blackhole route) go with the last cluster.
  if rmdir "$(dirname "$CLUSTER_STATE")" "$(dirname "$CLUSTER_RUN")" 2>/dev/null; then
    ip route del blackhole "$SERVICE_CIDR" 2>/dev/null || true
  fi
}

# remove_pods I: stop and remove every pod sandbox of node I (their CNI DEL releases the pod
# addresses and network namespaces), then any container shim still attached to its containerd.
remove_pods() {
  local sock pid
  sock="$CLUSTER_RUN/nodes/$(node_name "$1")/containerd.sock"
  if alive "containerd-$1" && [[ -S $sock ]]; then
    "$MLP_BIN/crictl" --runtime-endpoint "unix://$sock" rmp --force --all >/dev/null 2>&1 || true
  fi
  # Shims outlive containerd; they are ours when started with our containerd's address.
  for pid in $(pgrep -f -- "-address $sock" || true); do kill -9 "$pid" 2>/dev/null || true; done
}

unmount_under() { # unmount everything mounted below the given folders, deepest first
  local dir target
  for dir in "$@"; do
    { findmnt -rn -o TARGET | grep -E "^$dir(/|$)" || true; } | sort -r | while read -r target; do
      umount -l "$target" 2>/dev/null || true
    done
  done
}

status() {
  local i name
  for i in $(seq 1 "$MLP_REAL_NODES"); do
    name=$(node_name "$i")
    printf 'real node:  %-24s %-15s containerd %-4s kubelet %-4s kube-proxy %-4s netpol %s\n' "$name" "$(node_ip "$i")" \
      "$(alive "containerd-$i" && echo up || echo down)" "$(alive "kubelet-$i" && echo up || echo down)" \
      "$(alive "kube-proxy-$i" && echo up || echo down)" "$(alive "netpol-$i" && echo up || echo down)"
  done
  printf 'registry:   %-24s %s\n' "$REGISTRY" "$(alive registry && echo up || echo down)"
  printf 'gateway:    %-24s %s\n' "127.0.0.1:$GATEWAY_PORT -> :$GATEWAY_NODE_PORT" "$(alive gateway-forward && echo up || echo down)"
  printf 'dns:        %-24s %s\n' "$BRIDGE_IP:53" "$(alive coredns && echo up || echo down)"
}

case "${1:-status}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
