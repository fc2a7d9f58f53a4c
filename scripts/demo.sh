#!/usr/bin/env bash
# make demo: bootstrap (if needed) → local cluster → `pulumi up` of the dev stack (images built,
# pushed to the cluster's registry, pulled by the real nodes) → endpoints and one prediction per
# model, answered by the pods in the cluster through the gateway on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
scripts/bootstrap.sh
scripts/cluster.sh up
source scripts/env.sh
"$REPO_ROOT/scripts/select-stack.sh" dev
progress "pulumi up --stack dev (images are built and pushed by the docker-build provider in the same run)"
pulumi up --stack dev --policy-pack policy --parallel 64 --yes --skip-preview --non-interactive
outputs=$(pulumi stack output --stack dev --json)
gateway="http://127.0.0.1:$(scripts/cluster.sh env | sed -n 's/^GATEWAY_PORT=//p')"
progress "endpoints (the gateway listens on $gateway):"
python3 - "$outputs" "$gateway" <<'PY'
import json, sys
out, gateway = json.loads(sys.argv[1]), sys.argv[2]
for name, url in out["clusterUrls"].items():
    route = out.get("endpoints", {}).get(name, "-").replace("http://<gateway-address>", gateway)
    print(f"  {name}: {route}   (in-cluster {url})")
PY
namespace=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["namespace"])' <<<"$outputs")
kubectl get deploy,svc,hpa,pdb,httproute -n "$namespace"
kubectl get pods -n "$namespace" -o wide

# predict MODEL ROW_JSON: POST one row to the model's route through the gateway on loopback.
predict() {
  local model=$1 row=$2 base="$gateway/models/$1"
  for _ in $(seq 60); do curl -fs "$base/v2/health/ready" >/dev/null && break; sleep 1; done
  progress "$model, through the gateway ($base/predict):"
  curl -fsS -H 'content-type: application/json' "$base/predict" -d "$row" || true
  echo
}
# One row of each model's training data (scikit-learn's bundled breast-cancer and digits sets).
predict ml-model-1 "$(.venv/bin/python -c 'import json; from sklearn.datasets import load_breast_cancer as l; print(json.dumps({"instances": l().data[:1].tolist()}))')"
predict ml-model-2 "$(.venv/bin/python -c 'import json; from sklearn.datasets import load_digits as l; print(json.dumps({"instances": l().data[:1].tolist()}))')"
