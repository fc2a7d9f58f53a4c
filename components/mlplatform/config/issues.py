"""Turn pydantic validation errors into `ConfigIssue`s that name key path, value, allowed and fix.

The walk over the config models resolves each error location to the field it is about, so the
message can quote that field's documented allowed values and an example for the fix command.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from mlplatform.config.errors import ConfigIssue, key_path, not_set, rm_command, set_command
from mlplatform.config.stack import SECRET_KEYS, StackConfig, top_level_keys


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated so the walk sees the model, list or dict underneath."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _field_by_key(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _resolve(
    root: type[BaseModel], loc: tuple[str | int, ...]
) -> tuple[FieldInfo | None, type[BaseModel] | None]:
    """The field a location ends at, and the model that owns the last key."""
    current: Any = root
    field: FieldInfo | None = None
    owner: type[BaseModel] | None = None
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            owner = current
            field = _field_by_key(current, part)
            if field is None:
                return None, owner
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        if origin is list and isinstance(part, int):
            current = typing.get_args(current)[0]
            continue
        if origin is dict:
            current = typing.get_args(current)[1]
            continue
        # Pydantic adds the failing branch of a union or a type tag to the location; skip it.
        continue
    return field, owner


def _lookup(data: Any, loc: tuple[str | int, ...]) -> Any:
    value = data
    for part in loc:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return not_set()
    return value


def _clean_loc(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Keep the location parts that exist in the user's data, plus the first one that does not
    (a missing or unknown key); pydantic's extra parts such as '[key]' come after that and go."""
    cleaned: list[str | int] = []
    value = data
    for part in loc:
        if isinstance(value, Mapping):
            cleaned.append(part)
            if part not in value:
                break
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int):
            cleaned.append(part)
            if part >= len(value):
                break
            value = value[part]
        else:
            break
    return tuple(cleaned)


def _item_hint(data: Any, loc: tuple[str | int, ...]) -> str:
    """' (models[1] is "churn")' so list positions can be matched to names quickly."""
    value = data
    hints = []
    for index, part in enumerate(loc):
        if isinstance(value, Mapping):
            value = value.get(part) if isinstance(part, str) else None
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
            if isinstance(value, Mapping) and isinstance(value.get("name"), str):
                where = key_path(*loc[: index + 1]).split(":", 1)[1]
                hints.append(f'{where} is "{value["name"]}"')
        else:
            break
    return f" ({'; '.join(hints)})" if hints else ""


def _is_scalar(annotation: Any) -> bool:
    inner = _unwrap(annotation)
    if typing.get_origin(inner) in (list, dict):
        return False
    return not (isinstance(inner, type) and issubclass(inner, BaseModel))


def _problem(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def issues_from_validation_error(
    stack: str, error: ValidationError, data: Mapping[str, Any]
) -> list[ConfigIssue]:
    """One ConfigIssue per pydantic error, with the key path in `pulumi config --path` form."""
    issues: list[ConfigIssue] = []
    seen: set[tuple[str, str]] = set()
    for item in error.errors():
        loc = _clean_loc(data, tuple(item["loc"]))
        path = key_path(*loc) if loc else "mlplatform"
        kind = item["type"]
        field, owner = _resolve(StackConfig, loc)
        value = _lookup(data, loc)
        hint = _item_hint(data, loc)
        if kind == "extra_forbidden":
            known = sorted(f.alias or n for n, f in owner.model_fields.items()) if owner else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            suggestion = f" (did you mean '{close[0]}'?)" if close else ""
            moved = getattr(owner, "moved_keys", {}).get(str(loc[-1]))
            if moved:
                parent = key_path(*loc[:-1]) if loc[:-1] else "mlplatform"
                suggestion = f" (moved to {parent}.{moved})"
            if "password" in str(loc[-1]).lower():
                suggestion += (
                    "; passwords never go in plain config: "
                    f"pulumi config set --stack {stack} --secret mlplatform:registryPassword"
                )
            issue = ConfigIssue(
                path=path,
                value=value,
                problem=f"unknown key{suggestion}{hint}",
                allowed="keys " + ", ".join(known) if known else "no keys here",
                fix=rm_command(stack, path),
            )
        else:
            extra = (field.json_schema_extra or {}) if field else {}
            allowed = str(extra.get("allowed") or _problem(item))
            if kind == "missing":
                problem = f"required key is missing{hint}"
            else:
                problem = _problem(item) + hint
            if "example" in extra or field is None or _is_scalar(field.annotation):
                fix = set_command(stack, path, extra.get("example", "<value>"))
            else:
                fix = (
                    f"edit {path} in Pulumi.{stack}.yaml, or set its keys one by one with "
                    f"pulumi config set --stack {stack} --path '{path}.<key>' <value>"
                )
            issue = ConfigIssue(path=path, value=value, problem=problem, allowed=allowed, fix=fix)
        if (issue.path, issue.problem) not in seen:
            seen.add((issue.path, issue.problem))
            issues.append(issue)
    return issues


def unknown_key_issues(stack: str, unknown: list[str], raw: Mapping[str, Any]) -> list[ConfigIssue]:
    """Top-level `mlplatform:*` keys no code reads: almost always typos, so name the key meant."""
    known = sorted([*top_level_keys(), *SECRET_KEYS])
    issues = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        suggestion = f" (did you mean 'mlplatform:{close[0]}'?)" if close else ""
        value = raw.get(f"mlplatform:{key}", raw.get(key, not_set()))
        issues.append(
            ConfigIssue(
                path=key_path(key),
                value=value,
                problem=f"unknown configuration key{suggestion}",
                allowed="mlplatform:" + ", mlplatform:".join(known),
                fix=rm_command(stack, key_path(key)) + " (then set the intended key)",
            )
        )
    return issues
