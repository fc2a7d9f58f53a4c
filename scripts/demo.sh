#!/usr/bin/env bash
# make demo: bootstrap (if needed) → local cluster → `pulumi up` of the dev stack → endpoints and
# one prediction. Pods on the KWOK cluster are simulated, so the prediction comes from the very
# image the model's Deployment runs, started with Docker on loopback.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
scripts/bootstrap.sh
scripts/cluster.sh up
source scripts/env.sh
pulumi stack select --create dev --non-interactive >/dev/null
progress "pulumi up --stack dev (images are built by the docker-build provider in the same run)"
pulumi up --stack dev --policy-pack policy --parallel 64 --yes --skip-preview --non-interactive
outputs=$(pulumi stack output --stack dev --json)
progress "endpoints:"
python3 - "$outputs" <<'PY'
import json, sys
out = json.loads(sys.argv[1])
for name, url in out["clusterUrls"].items():
    print(f"  {name}: in-cluster {url}   ingress {out.get('endpoints', {}).get(name, '-')}")
PY
kubectl get deploy,svc,hpa,pdb -n "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["namespace"])' <<<"$outputs")"
image=$(python3 -c 'import json,sys; i=json.load(sys.stdin)["images"]; print(i["ml-model-1"])' <<<"$outputs")
port=18080
progress "one prediction from $image (docker run on 127.0.0.1:$port)"
cid=$(docker run -d --rm --network host -e PORT=$port "$image")
trap 'docker stop -t 5 "$cid" >/dev/null' EXIT
for _ in $(seq 50); do curl -fs "127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.2; done
# One row of scikit-learn's bundled breast-cancer data (what ml-model-1 was trained on).
row=$(.venv/bin/python -c 'import json; from sklearn.datasets import load_breast_cancer as l; print(json.dumps({"instances": l().data[:1].tolist()}))')
curl -fsS -H 'content-type: application/json' "127.0.0.1:$port/predict" -d "$row"
echo
