"""Pure planning functions: config in, plain Kubernetes-shaped data out. No Pulumi resources."""
