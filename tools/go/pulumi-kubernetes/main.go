// Command pulumi-resource-kubernetes serves the Kubernetes provider plugin.
//
// The provider package needs its schema and Terraform mapping compiled in. They are generated
// from the module's committed schema.json by scripts/bootstrap (version stamped, minified) into
// the build directory next to this file before `go build`; they are not committed here.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
