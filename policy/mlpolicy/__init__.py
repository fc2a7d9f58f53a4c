"""mlplatform policy pack: rules as plain functions over Kubernetes objects (registry.RULES)."""
