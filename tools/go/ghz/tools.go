//go:build tools

// Package tools pins ghz (the gRPC load generator of benchmarks/bench_serving_peers.py) for
// scripts/bootstrap.sh's bench_peers step, which builds github.com/bojand/ghz/cmd/ghz from here.
package tools

import _ "github.com/bojand/ghz/cmd/ghz"
