#!/usr/bin/env bash
# make demo: bootstrap (if needed) → local cluster → `pulumi up` of the dev stack (images built,
# pushed to the cluster's registry, pulled by the real nodes) → endpoints and one prediction per
# model, answered by the pods in the cluster through a port-forward on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
scripts/bootstrap.sh
scripts/cluster.sh up
source scripts/env.sh
pulumi stack select --create dev --non-interactive >/dev/null
progress "pulumi up --stack dev (images are built and pushed by the docker-build provider in the same run)"
pulumi up --stack dev --policy-pack policy --parallel 64 --yes --skip-preview --non-interactive
outputs=$(pulumi stack output --stack dev --json)
progress "endpoints:"
python3 - "$outputs" <<'PY'
import json, sys
out = json.loads(sys.argv[1])
for name, url in out["clusterUrls"].items():
    print(f"  {name}: in-cluster {url}   ingress {out.get('endpoints', {}).get(name, '-')}")
PY
namespace=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["namespace"])' <<<"$outputs")
kubectl get deploy,svc,hpa,pdb -n "$namespace"
kubectl get pods -n "$namespace" -o wide

# predict MODEL ROW_JSON: POST one row to the model's Service through a port-forward.
predict() {
  local model=$1 row=$2 port pf
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  kubectl port-forward -n "$namespace" --address 127.0.0.1 "svc/$model" "$port:8080" >/dev/null &
  pf=$!
  for _ in $(seq 50); do curl -fs "127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.2; done
  progress "$model, answered in the cluster (port-forward 127.0.0.1:$port → svc/$model):"
  curl -fsS -H 'content-type: application/json' "127.0.0.1:$port/predict" -d "$row" || true
  echo
  kill "$pf"; wait "$pf" 2>/dev/null || true
}
# One row of each model's training data (scikit-learn's bundled breast-cancer and digits sets).
predict ml-model-1 "$(.venv/bin/python -c 'import json; from sklearn.datasets import load_breast_cancer as l; print(json.dumps({"instances": l().data[:1].tolist()}))')"
predict ml-model-2 "$(.venv/bin/python -c 'import json; from sklearn.datasets import load_digits as l; print(json.dumps({"instances": l().data[:1].tolist()}))')"
