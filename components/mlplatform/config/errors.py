"""Errors raised while reading and checking stack configuration.

A `ConfigError` is raised before any resource is registered, so `pulumi preview` fails fast with a
message an operator can act on: which stack, which key path, what value was seen, what is allowed
and the command that fixes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pulumi import RunError

CONFIG_NAMESPACE = "mlplatform"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in the stack configuration.

    `path` is a Pulumi `--path` key such as ``mlplatform:models[0].resources.limits.cpu``.
    """

    path: str
    value: Any
    problem: str
    allowed: str
    fix: str

    def render(self, stack: str) -> str:
        return (
            f"stack {stack!r}: invalid config at {self.path} (value: {format_value(self.value)})\n"
            f"    problem: {self.problem}\n"
            f"    allowed: {self.allowed}\n"
            f"    fix:     {self.fix}"
        )


class ConfigError(RunError):
    """The stack configuration is invalid; nothing has been deployed.

    The message lists every issue found; `issues` keeps them structured for tests and tools. As a
    RunError, Pulumi prints the message without a Python traceback.
    """

    def __init__(self, stack: str, issues: list[ConfigIssue]):
        if not issues:
            raise ValueError("ConfigError needs at least one issue")
        self.stack = stack
        self.issues = tuple(issues)
        count = len(issues)
        header = f"{count} configuration error{'s' if count > 1 else ''} in stack {stack!r}"
        body = "\n".join(issue.render(stack) for issue in issues)
        super().__init__(f"{header}:\n{body}")

    @property
    def paths(self) -> list[str]:
        """The key paths of all issues, in order."""
        return [issue.path for issue in self.issues]


_MISSING = object()


def format_value(value: Any) -> str:
    """Render a config value compactly; long values are cut so the message stays one screen."""
    if value is _MISSING:
        return "<not set>"
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def not_set() -> Any:
    """Sentinel for a value that is absent from the config (distinct from an explicit null)."""
    return _MISSING


def key_path(*parts: str | int) -> str:
    """Build a Pulumi `--path` key: ("models", 0, "name") -> "mlplatform:models[0].name".

    Map keys that are not plain identifiers (label keys such as ``mlplatform.io/role``) use the
    bracket form that `pulumi config set --path` understands.
    """
    text = CONFIG_NAMESPACE + ":"
    first = True
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.replace("_", "a").isalnum() and not part[:1].isdigit():
            text += part if first else f".{part}"
        else:
            text += f'["{part}"]'
        first = False
    return text


def set_command(stack: str, path: str, example: Any = "<value>") -> str:
    """The CLI command that sets `path`; objects and lists need `--path` plus JSON-ish values."""
    value = example if isinstance(example, str) else json.dumps(example)
    flag = " --path" if any(ch in path for ch in ".[") else ""
    return f"pulumi config set --stack {stack}{flag} '{path}' '{value}'"


def rm_command(stack: str, path: str) -> str:
    flag = " --path" if any(ch in path for ch in ".[") else ""
    return f"pulumi config rm --stack {stack}{flag} '{path}'"
