// Package java declares the Java language section of a Pulumi package schema, as far as the
// docker-build provider fills it. It only describes SDK generation; no runtime behaviour.
package java

// PackageInfo is the schema's `language.java` object.
type PackageInfo struct {
	BuildFiles                      string            `json:"buildFiles,omitempty"`
	GradleNexusPublishPluginVersion string            `json:"gradleNexusPublishPluginVersion,omitempty"`
	Dependencies                    map[string]string `json:"dependencies,omitempty"`
}
