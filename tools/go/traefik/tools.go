//go:build tools

// Package tools records the program this module builds.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
