"""Shared helpers of the integration tier: bootstrapped tools, the Pulumi CLI runner, polling."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MLP_CACHE", Path.home() / ".cache" / "mlplatform"))
BIN = CACHE / "bin"
# What a throwaway copy of the project leaves out: VCS data, state, caches, environments (linked).
SKIP_COPY = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    ".pulumi-state",
    "build",
    "*.egg-info",
    "results",
)


def copy_project(dest: Path) -> Path:
    """The checkout as a throwaway Pulumi project with its environments linked, not copied.

    Stack files lose the `encryptionsalt:` line a `pulumi up` of the checkout (e.g. `make demo`)
    adds from this machine's passphrase: the copy runs on its own backend, so its stacks are new.
    A stack file that holds secrets keeps its salt; those secrets need the passphrase that made
    them, which the copy then must use too.
    """
    shutil.copytree(REPO, dest, ignore=SKIP_COPY, symlinks=True)
    for venv in (".venv", "policy/.venv"):
        if not (REPO / venv / "bin" / "python").exists():
            pytest.fail(
                f"{REPO / venv} is missing: run `make bootstrap` (step venv builds it)",
                pytrace=False,
            )
        (dest / venv).symlink_to((REPO / venv).resolve())
    for stack_file in dest.glob("Pulumi.*.yaml"):
        drop_encryption_salt(stack_file)
    return dest


LOCAL_REGISTRY = "localhost:5001"


def for_test_cluster(doc: dict, layout: dict[str, str]) -> dict:
    """A stack file's document (Pulumi.dev.yaml) pointed at the cluster `layout` describes: every
    image the dev stack pulls from the default cluster's registry comes from this cluster's, and
    the gateway listens on the NodePort this cluster's forward reaches. Changes `doc` in place."""

    def retarget(value):
        if isinstance(value, str) and value.startswith(f"{LOCAL_REGISTRY}/"):
            return layout["REGISTRY"] + value[len(LOCAL_REGISTRY) :]
        if isinstance(value, dict):
            return {k: retarget(v) for k, v in value.items()}
        if isinstance(value, list):
            return [retarget(v) for v in value]
        return value

    config = doc["config"]
    config.update(retarget(config))
    config["mlplatform:registry"] = {"server": layout["REGISTRY"]}
    config["mlplatform:ingress"]["gateway"]["nodePort"] = int(layout["GATEWAY_NODE_PORT"])
    return doc


def drop_encryption_salt(path: Path) -> bool:
    """Remove the salt line unless the file holds secrets; True when the file has secrets."""
    text = path.read_text()
    if "secure:" in text:
        return True
    path.write_text(
        "".join(
            line
            for line in text.splitlines(keepends=True)
            if not line.startswith("encryptionsalt:")
        )
    )
    return False


def tool(name: str) -> str:
    """Path of a bootstrapped tool, or a failure that says how to get it."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} not found in {BIN}: run `make bootstrap` first", pytrace=False)
    return str(path)


def run(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 600, cwd: Path | None = None
) -> str:
    """Run a command; its stdout, or a failed assertion showing the end of its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
        f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc.stdout


class Pulumi:
    """The real Pulumi CLI on one project directory and file backend."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.cwd, self.env, self.exe = cwd, env, tool("pulumi")

    def __call__(
        self, *args: str, check: bool = True, timeout: int = 900
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [self.exe, *args, "--non-interactive"],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc


def wait_for(what: str, check, timeout: float = 120, interval: float = 1.0):
    """Poll check() until it returns a truthy value; fail naming `what` and the last value."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}", pytrace=False)


def cluster_layout(env: dict[str, str]) -> dict[str, str]:
    """The local cluster's names, addresses and ports (`scripts/cluster.sh env`)."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster.sh"), "env"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def port_forward(
    env: dict[str, str], namespace: str, target: str, remote_port: int
) -> Iterator[str]:
    """`kubectl port-forward` of TARGET (svc/NAME or pod/NAME) to 127.0.0.1; yields the base URL.

    The forward runs through the API server and the node's kubelet, as on any cluster; traffic
    never leaves loopback on this side. Stopped by its pid when the block ends.
    """
    port = free_port()
    proc = subprocess.Popen(
        [
            tool("kubectl"),
            "port-forward",
            "-n",
            namespace,
            "--address",
            "127.0.0.1",
            target,
            f"{port}:{remote_port}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def listening():
            if proc.poll() is not None:
                pytest.fail(
                    f"port-forward to {namespace}/{target} exited: {proc.stdout.read()}",
                    pytrace=False,
                )
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(f"port-forward to {namespace}/{target}", listening, timeout=30, interval=0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# One new HTTP connection, bounded: 2 s to connect, 3 s in all; prints only the status code.
CURL = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--connect-timeout", "2"]
CURL += ["--max-time", "3"]


class PodNet:
    """Runs curl inside a pod's own network namespace (found through its node's containerd), so
    the connection comes from the pod's address, as the pod's own would."""

    def __init__(self, layout, kubectl):
        self.layout, self.kubectl = layout, kubectl
        self._pids: dict[tuple[str, str], int] = {}

    def pid(self, namespace: str, name: str) -> int:
        """The pod sandbox's process, through crictl on the pod's node's containerd."""
        if (namespace, name) not in self._pids:
            pod = self.kubectl("get", "pod", "-n", namespace, name, as_json=True)
            sock = f"{self.layout['CLUSTER_RUN']}/nodes/{pod['spec']['nodeName']}/containerd.sock"
            crictl = [tool("crictl"), "--runtime-endpoint", f"unix://{sock}"]
            # By UID: a sandbox of an earlier pod of the same name may still be on the node.
            query = ["pods", "-q", "--label", f"io.kubernetes.pod.uid={pod['metadata']['uid']}"]
            ids = subprocess.run(
                [*crictl, *query], capture_output=True, text=True, check=True
            ).stdout.split()
            assert len(ids) == 1, (namespace, name, ids)
            info = subprocess.run(
                [*crictl, "inspectp", ids[0]], capture_output=True, text=True, check=True
            ).stdout
            self._pids[namespace, name] = json.loads(info)["info"]["pid"]
        return self._pids[namespace, name]

    def reaches(self, namespace: str, name: str, url: str) -> bool:
        netns = f"--net=/proc/{self.pid(namespace, name)}/ns/net"
        proc = subprocess.run(
            ["nsenter", netns, "--", *CURL, url], capture_output=True, text=True, timeout=10
        )
        return proc.stdout == "200"
