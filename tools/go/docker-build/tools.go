//go:build tools

// Package tools records the programs this module builds.
package tools

import (
	_ "github.com/docker/buildx/cmd/buildx"
	_ "github.com/pulumi/pulumi-docker-build/provider/cmd/pulumi-resource-docker-build"
)
