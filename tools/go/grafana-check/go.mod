// Wrapper module for the dashboard checker: grafana-foundation-sdk's Go types decode a dashboard
// strictly (unknown fields are errors) and validate required ones. Grafana itself cannot run here.
module mlplatform.local/tools/grafana-check

go 1.25.11

require github.com/grafana/grafana-foundation-sdk/go v0.0.22
