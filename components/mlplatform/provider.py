"""The one explicit Kubernetes provider of a stack."""

from __future__ import annotations

import os

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.config import StackConfig


def kubeconfig_source(config: StackConfig, environ: dict[str, str] | None = None) -> str | None:
    """`mlplatform:kubeconfig`, else a single-file $KUBECONFIG, else None (provider defaults)."""
    if config.kubeconfig:
        return (
            os.path.expanduser(config.kubeconfig)
            if "\n" not in config.kubeconfig
            else config.kubeconfig
        )
    value = (os.environ if environ is None else environ).get("KUBECONFIG", "")
    # A colon-separated list is merged by the provider itself; pass only a single path.
    return value if value and os.pathsep not in value else None


def kubernetes_provider(
    name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    return k8s.Provider(
        name,
        kubeconfig=kubeconfig_source(config),
        context=config.kube_context,
        # Explicit, so a provider default flipping between versions cannot change field ownership.
        enable_server_side_apply=True,
        opts=opts,
    )
