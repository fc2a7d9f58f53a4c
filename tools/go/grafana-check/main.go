// Command grafana-check decodes Grafana dashboard JSON files with grafana-foundation-sdk's
// generated types, strictly (an unknown or a missing required field, in the dashboard or in the
// options of a registered panel type, is an error), and validates them (value constraints such
// as grid positions). It prints one line per file and exits 1 when any file fails.
//
//	grafana-check DASHBOARD.json...
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func check(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var strict dashboard.Dashboard
	if err := nonEmpty(strict.UnmarshalJSONStrict(raw)); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	// Validate a plain decode, not the strict one: the same empty error list makes the strict
	// PanelOrRowPanel decoder return before it stores the panel, so the strict result has no
	// panels to validate (grid positions, field config) and would pass any.
	var board dashboard.Dashboard
	if err := json.Unmarshal(raw, &board); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if err := board.Validate(); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return nil
}

// nonEmpty is err unless it is an empty cog.BuildErrors. The SDK's generated UnmarshalJSONStrict
// methods (v0.0.22) end in `return errs` without checking the list's length, so a clean input
// yields a typed nil: a non-nil error whose message is empty, which would fail every file.
func nonEmpty(err error) error {
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
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
