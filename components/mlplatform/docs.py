"""Render the configuration reference (docs/components.md) from the config models.

`python -m mlplatform.docs [FILE]` prints the generated section, or rewrites it in FILE (`make
docs`); a unit test keeps the document in sync,
so the reference cannot drift from the code that enforces it.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlplatform.config import SECRET_KEYS, StackConfig
from mlplatform.config.issues import _unwrap

BEGIN = "<!-- BEGIN GENERATED CONFIG REFERENCE (python -m mlplatform.docs) -->"
END = "<!-- END GENERATED CONFIG REFERENCE -->"


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """(model, suffix): the model under a field and how its keys continue the path."""
    inner = _unwrap(annotation)
    if typing.get_origin(inner) is list:
        item = _unwrap(typing.get_args(inner)[0])
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item, "[]"
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return inner, ""
    return None, ""


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        description = field.description or ""
        doc = description.split(" Default: ")[0]
        default = (
            description.split(" Default: ")[1].split(". Allowed: ")[0]
            if " Default: " in description
            else ""
        )
        rows.append((key, default, str(extra.get("allowed", "")), doc))
        nested, suffix = _nested_model(field.annotation)
        if nested is not None:
            rows.extend(_rows(nested, f"{key}{suffix}."))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The generated Markdown section, markers included."""
    lines = [BEGIN, ""]
    for name, field in StackConfig.model_fields.items():
        top = field.alias or name
        lines += [f"### `mlplatform:{top}`", "", field.description or "", ""]
        nested, suffix = _nested_model(field.annotation)
        if nested is None:
            continue
        lines += ["| key | default | allowed | meaning |", "|---|---|---|---|"]
        for key, default, allowed, doc in _rows(nested, f"{top}{suffix}."):
            lines.append(f"| `{key}` | {_cell(default)} | {_cell(allowed)} | {_cell(doc)} |")
        lines.append("")
    lines += [
        "### Secrets",
        "",
        "Set with `pulumi config set --secret <key> <value>`; never in plain config.",
        "",
    ]
    lines += [f"- `mlplatform:{key}`: {text}" for key, text in SECRET_KEYS.items()]
    lines += ["", END]
    return "\n".join(lines)


def rewrite(path: Path) -> None:
    """Replace the generated section of the Markdown file at `path` with the current one."""
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + render() + text[end:])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        rewrite(Path(sys.argv[1]))
    else:
        print(render())
