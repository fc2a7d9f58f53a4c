//go:build tools

// Package tools records the programs this module builds: the operator, the metrics API server
// (external.metrics.k8s.io) and the admission webhooks.
package tools

import (
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/operator"
	_ "github.com/kedacore/keda/v2/cmd/webhooks"
)
