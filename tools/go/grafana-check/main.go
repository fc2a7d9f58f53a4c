// Command grafana-check decodes Grafana dashboard JSON files with grafana-foundation-sdk's
// generated types, strictly (an unknown dashboard or panel field is an error), and validates
// them (required fields, panel options of the registered panel types). It prints one line per
// file and exits 1 when any file fails.
//
//	grafana-check DASHBOARD.json...
package main

import (
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func check(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var board dashboard.Dashboard
	if err := board.UnmarshalJSONStrict(raw); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if err := board.Validate(); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grafana-check DASHBOARD.json...")
		os.Exit(2)
	}
	// Panel and data source types decode their options through these registrations.
	plugins.RegisterDefaultPlugins()
	failed := 0
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Printf("FAIL %s: %v\n", path, err)
			failed++
			continue
		}
		fmt.Printf("ok   %s\n", path)
	}
	if failed > 0 {
		os.Exit(1)
	}
}
