// Package codegen declares the C# language section of a Pulumi package schema, as far as the
// docker-build provider fills it. It only describes SDK generation; no runtime behaviour.
package codegen

// CSharpPackageInfo is the schema's `language.csharp` object.
type CSharpPackageInfo struct {
	RespectSchemaVersion bool              `json:"respectSchemaVersion,omitempty"`
	PackageReferences    map[string]string `json:"packageReferences,omitempty"`
}
