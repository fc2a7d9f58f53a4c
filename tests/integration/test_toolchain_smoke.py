"""Proof that the bootstrapped toolchain works end to end: the real Pulumi engine, our Python
language host, the Kubernetes provider plugin built from its Go module, and the local cluster
(real etcd + kube-apiserver + controller-manager + scheduler, real nodes pulling from the
cluster's registry)."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from harness import cluster_layout

pytestmark = pytest.mark.integration

PROGRAM = textwrap.dedent(
    """
    import pulumi
    import pulumi_kubernetes as k8s

    ns = k8s.core.v1.Namespace("smoke", metadata={"name": "toolchain-smoke"})
    labels = {"app": "smoke"}
    dep = k8s.apps.v1.Deployment(
        "smoke",
        metadata={"namespace": ns.metadata["name"], "name": "smoke"},
        spec={
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": pulumi.Config().require("image"),
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ]
                },
            },
        },
    )
    pulumi.export("deployment", dep.metadata["name"])
    pulumi.export("ready", dep.status["ready_replicas"])
    """
)

PROJECT = textwrap.dedent(
    """
    name: toolchain-smoke
    runtime:
      name: python
      options: {toolchain: pip, virtualenv: .venv}
    """
)


def test_server_reports_pinned_kubernetes_version(kubectl):
    version = json.loads(kubectl("get", "--raw", "/version").stdout)
    assert re.fullmatch(r"v1\.33\.\d+", version["gitVersion"]), version


def test_pulumi_up_creates_available_deployment_and_destroy_removes_it(
    pulumi_project, kubectl, tool_env
):
    pulumi = pulumi_project(files={"Pulumi.yaml": PROJECT, "__main__.py": PROGRAM})
    pulumi("stack", "init", "smoke")
    # A container that really runs on the nodes: the pod sandbox image cluster-up pushed.
    pulumi("config", "set", "image", f"{cluster_layout(tool_env)['REGISTRY']}/pause:3.10.1")

    up = pulumi("up", "--yes", "--skip-preview")
    assert "error" not in up.stderr.lower(), up.stderr

    dep = kubectl("get", "deployment", "smoke", "-n", "toolchain-smoke", as_json=True)
    available = {c["type"]: c["status"] for c in dep["status"]["conditions"]}
    assert available.get("Available") == "True", dep["status"]
    assert dep["status"]["readyReplicas"] == 2

    outputs = json.loads(pulumi("stack", "output", "--json").stdout)
    assert outputs["deployment"] == "smoke" and outputs["ready"] == 2

    # A second up is a no-op: the engine and provider agree with what the cluster holds.
    preview = pulumi("preview", "--expect-no-changes")
    assert preview.returncode == 0

    pulumi("destroy", "--yes")
    gone = kubectl("get", "namespace", "toolchain-smoke", check=False)
    terminating = gone.returncode == 0 and "Terminating" in gone.stdout
    assert gone.returncode != 0 or terminating, gone.stdout
    assert (
        pulumi("stack", "export").stdout.count('"urn"') <= 1
    )  # only the stack resource may remain


def test_a_project_without_virtualenv_runs_with_the_callers_environment(pulumi_project):
    """Our language host starts the program with the process environment plus Pulumi's config,
    also when the project names no virtualenv (python from PATH): a variable set by the caller
    reaches the program."""
    pulumi = pulumi_project(
        files={
            "Pulumi.yaml": "name: env-probe\nruntime: python\n",
            "__main__.py": "import os\nimport pulumi\n\n"
            'pulumi.export("probe", os.environ.get("MLP_ENV_PROBE", "<unset>"))\n',
        }
    )
    (pulumi.cwd / ".venv").unlink()  # this project runs the python found on PATH
    pulumi.env = {**pulumi.env, "MLP_ENV_PROBE": "inherited"}
    pulumi("stack", "init", "probe")
    pulumi("up", "--yes", "--skip-preview")
    assert pulumi("stack", "output", "probe").stdout.strip() == "inherited"
