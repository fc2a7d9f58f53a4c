# Every command a user or CI needs. Each target sources scripts/env.sh (tools on PATH, offline
# Pulumi settings, kubeconfig), so nothing has to be set up by hand.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ENV := source scripts/env.sh &&
PY := .venv/bin/python
STACK ?= dev
# Resource operations in flight. The provider awaits readiness per object, so the engine's default
# leaves it waiting: 64 made `up` of 50 models 2.5x faster (benchmarks/results/iac-parallel-64.md).
PARALLEL ?= 64
PYTEST_ARGS ?=

.PHONY: help bootstrap venv cluster-up cluster-down cluster-status test test-unit test-models \
        test-integration stack preview up destroy demo bench

help:            ## list targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/' | expand -t 18

bootstrap:       ## build/install every tool (cached by version; warm run takes seconds)
	scripts/bootstrap.sh

venv:            ## only the Python environments (enough for test-unit)
	scripts/bootstrap.sh venv

cluster-up:      ## start the local cluster: control plane, 3 real nodes, registry, DNS, KWOK nodes
	scripts/cluster.sh up

cluster-down:    ## delete the local cluster
	scripts/cluster.sh down

cluster-status:  ## show the local cluster
	scripts/cluster.sh status

test-unit: venv  ## unit tier: no cluster, no Docker, no Go builds (about a minute)
	$(ENV) $(PY) -m pytest tests/unit --ignore-glob='tests/unit/test_policy*' -q -p no:cacheprovider $(PYTEST_ARGS)
	$(ENV) policy/.venv/bin/python -m pytest tests/unit/test_policy*.py -q -p no:cacheprovider $(PYTEST_ARGS)

test-models: venv ## model tier: real training, real server processes, real HTTP, real images
	$(ENV) scripts/docker.sh start && scripts/base-images.sh
	$(ENV) $(PY) -m pytest tests/models -q -p no:cacheprovider $(PYTEST_ARGS)

test-integration: bootstrap cluster-up ## integration tier: real Pulumi engine, real cluster, promtool
	$(ENV) $(PY) -m pytest tests/integration -q -p no:cacheprovider $(PYTEST_ARGS)

# The integration tier gets its own freshly made cluster, so it neither disturbs nor inherits
# the state of your dev cluster (`make cluster-up`).
TEST_CLUSTER := mlplatform-test

test: bootstrap  ## everything CI runs: unit, model and integration tiers
	$(MAKE) test-unit
	$(MAKE) test-models
	MLP_CLUSTER=$(TEST_CLUSTER) KUBECONFIG= scripts/cluster.sh recreate
	rc=0; $(ENV) MLP_CLUSTER=$(TEST_CLUSTER) KUBECONFIG=$$HOME/.kwok/clusters/$(TEST_CLUSTER)/kubeconfig.yaml \
	  $(PY) -m pytest tests/integration -q -p no:cacheprovider $(PYTEST_ARGS) || rc=$$?; \
	MLP_CLUSTER=$(TEST_CLUSTER) KUBECONFIG= scripts/cluster.sh down; exit $$rc

stack:           ## select (creating if needed) the stack STACK=dev|prod on the local backend
	$(ENV) pulumi stack select --create $(STACK) --non-interactive >/dev/null

preview: stack   ## pulumi preview STACK=dev|prod with the policy pack
	$(ENV) pulumi preview --stack $(STACK) --policy-pack policy --parallel $(PARALLEL) --diff --non-interactive

up: stack        ## pulumi up STACK=dev|prod with the policy pack
	$(ENV) pulumi up --stack $(STACK) --policy-pack policy --parallel $(PARALLEL) --yes --skip-preview --non-interactive

destroy: stack   ## pulumi destroy STACK=dev|prod
	$(ENV) pulumi destroy --stack $(STACK) --parallel $(PARALLEL) --yes --non-interactive

demo:            ## bootstrap, cluster up, deploy the dev stack, show endpoints and one prediction
	scripts/demo.sh

bench:           ## benchmarks: serving vs peers, IaC scaling (results in benchmarks/results/)
	$(ENV) for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done
