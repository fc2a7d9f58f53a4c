"""Run Pulumi programs under mocks and record the resource graph (unit tier only).

The mocks echo inputs back as outputs and fill in what a provider would: names of Kubernetes
objects (autonaming) and the `ref` of docker-build images. A recording monitor keeps each
registration's parent, which Pulumi's mock arguments do not carry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings


@dataclass
class Registered:
    """One registered resource: its type token, logical name, parent (type::name) and inputs."""

    type: str
    name: str
    parent: str
    inputs: dict[str, Any]
    custom: bool
    provider: str = ""

    @property
    def key(self) -> str:
        return f"{self.type}::{self.name}"


def _parent_key(urn: str) -> str:
    if not urn:
        return ""
    _, _, rest = urn.partition("::")
    _, _, rest = rest.partition("::")
    qualified, _, name = rest.partition("::")
    parent_type = qualified.split("$")[-1]
    return "stack" if parent_type == "pulumi:pulumi:Stack" else f"{parent_type}::{name}"


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}
        self.providers: dict[tuple[str, str], str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ.startswith("kubernetes:") and not args.typ.startswith("kubernetes:pulumi"):
            metadata = dict(outputs.get("metadata") or {})
            metadata.setdefault("name", f"{args.name}-autonamed")
            outputs["metadata"] = metadata
        if args.typ == "docker-build:index:Image":
            tags = outputs.get("tags") or []
            outputs["ref"] = tags[0] if tags else ""
            if outputs.get("push"):
                # What a registry answers: the manifest digest (deterministic per tag here).
                outputs["digest"] = "sha256:" + hashlib.sha256(outputs["ref"].encode()).hexdigest()
        self.inputs[(args.typ, args.name)] = dict(args.inputs)
        self.providers[(args.typ, args.name)] = args.provider or ""
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[tuple[str, str, str, bool]] = []

    def RegisterResource(self, request):
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append((request.type, request.name, request.parent, request.custom))
        return super().RegisterResource(request)


@dataclass
class Graph:
    """The resources a program registered, in registration order."""

    resources: list[Registered] = field(default_factory=list)
    error: BaseException | None = None

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}: {[r.key for r in matches]}")
        return matches[0]

    def children_of(self, parent: Registered) -> list[Registered]:
        return [r for r in self.resources if r.parent == parent.key]

    def snapshot(self) -> str:
        """Type, name and parent of every resource, sorted: the stable shape of the graph."""
        lines = sorted(f"{r.type} {r.name} <- {r.parent}" for r in self.resources)
        return "\n".join(lines) + "\n"


def encode_config(values: dict[str, Any], namespace: str = "mlplatform") -> dict[str, str]:
    """Config as the engine hands it to programs: objects/lists as JSON, strings as they are."""
    encoded = {}
    for key, value in values.items():
        full = key if ":" in key else f"{namespace}:{key}"
        encoded[full] = value if isinstance(value, str) else json.dumps(value)
    return encoded


def run_program(
    program: Callable[[], Any],
    *,
    stack: str = "unit",
    project: str = "mlplatform",
    config: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    preview: bool = False,
    catch: type[BaseException] | None = None,
) -> Graph:
    """Run `program` under fresh mocks and wait for every registration; return the graph.

    Exceptions raised by the program (such as ConfigError) propagate to the caller, unless they
    are of type `catch`: then they are stored in `Graph.error` beside what was registered.
    """
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(encode_config(config or {}, project), secret_keys or [])
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    graph = Graph()

    @pulumi.runtime.test
    def body():
        try:
            result = program()
        except BaseException as error:
            if catch is None or not isinstance(error, catch):
                raise
            graph.error = error
            return None
        return pulumi.Output.from_input(result) if result is not None else None

    body()
    for type_, name, parent, custom in monitor.registrations:
        key = (type_, name)
        graph.resources.append(
            Registered(
                type_,
                name,
                _parent_key(parent),
                mocks.inputs.get(key, {}),
                custom,
                mocks.providers.get(key, ""),
            )
        )
    return graph


def capture(outputs: dict[str, Any], into: dict[str, Any]) -> pulumi.Output:
    """Return this from a program to have the resolved values of `outputs` stored in `into`."""
    return pulumi.Output.all(**outputs).apply(lambda values: into.update(values))
