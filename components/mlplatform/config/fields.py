"""Building blocks of the config models: documented fields, the base model, checked strings."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined

from mlplatform.core.quantity import cpu_cores, memory_bytes


def setting(
    default: Any = PydanticUndefined,
    *,
    doc: str,
    allowed: str,
    example: Any = None,
    default_factory: Callable[[], Any] | None = None,
    **constraints: Any,
) -> Any:
    """A config field whose description always states its default and allowed values.

    `allowed` and `example` are kept machine-readable so `ConfigError` can quote them and build the
    fixing `pulumi config set` command.
    """
    if default_factory is not None:
        shown = _shown_factory_default(default_factory)
    elif default is PydanticUndefined:
        shown = "required"
    else:
        shown = json.dumps(default)
    extra: dict[str, Any] = {"allowed": allowed}
    if example is not None:
        extra["example"] = example
    kwargs: dict[str, Any] = dict(
        description=f"{doc} Default: {shown}. Allowed: {allowed}.",
        json_schema_extra=extra,
        **constraints,
    )
    if default_factory is not None:
        return Field(default_factory=default_factory, **kwargs)
    return Field(default, **kwargs)


def _shown_factory_default(factory: Callable[[], Any]) -> str:
    value = factory()
    if isinstance(value, BaseModel):
        try:
            if value == type(value)():
                return "see the sub-keys"
        except ValidationError:
            pass
        return json.dumps(value.model_dump(by_alias=True, exclude_none=True))
    return json.dumps(value)


class ConfigModel(BaseModel):
    """Base of all config models: frozen, unknown keys rejected, camelCase aliases."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


def _pattern(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def validate(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(validate)


def _quantity(parse: Callable[[str], Any]) -> AfterValidator:
    def validate(value: str) -> str:
        parse(value)
        return value

    return AfterValidator(validate)


# Kubernetes Service names must be RFC 1035 labels; 40 characters leave room for the
# "-canary", "-hpa", "-pdb" suffixes of derived objects within the 63-character limit.
ModelName = Annotated[
    str,
    _pattern(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", "an RFC 1035 label of at most 40 characters"),
]
DnsLabel = Annotated[
    str,
    _pattern(
        r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        "an RFC 1123 label (lowercase letters, digits, '-')",
    ),
]
_DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _dns_name(value: str) -> str:
    if _DNS_NAME.match(value):
        return value
    scheme, sep, rest = value.partition("://")
    if sep:
        host = rest.split("/", 1)[0].split(":", 1)[0]
        raise ValueError(
            f"{value!r} has a scheme ({scheme}://); give the host name only, e.g. {host!r} "
            "(TLS is set by the tls keys)"
        )
    if ":" in value or "/" in value:
        host = value.split("/", 1)[0].split(":", 1)[0]
        raise ValueError(f"{value!r} has a port or path; give the host name only, e.g. {host!r}")
    raise ValueError(f"{value!r} is not a lowercase DNS name")


DnsName = Annotated[str, AfterValidator(_dns_name)]
LabelValue = Annotated[
    str, _pattern(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", "a Kubernetes label value")
]
LabelKey = Annotated[
    str,
    _pattern(
        r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
        "a Kubernetes label key",
    ),
]
SourceDir = Annotated[str, _pattern(r"^[a-z0-9][a-z0-9_-]*$", "a folder name under models/")]
ImageRef = Annotated[
    str,
    _pattern(
        r"^[a-z0-9][a-z0-9._\-/:]*(:[\w][\w.\-]{0,127})?(@sha256:[0-9a-f]{64})?$",
        "an image reference",
    ),
]
PinnedImageRef = Annotated[
    str,
    _pattern(
        r"^[a-z0-9][a-z0-9._\-/:]*(:(?!latest$)[\w][\w.\-]{0,127}(@sha256:[0-9a-f]{64})?"
        r"|@sha256:[0-9a-f]{64})$",
        "an image reference pinned by a tag other than 'latest' or by digest",
    ),
]
UrlPath = Annotated[str, _pattern(r"^/[A-Za-z0-9._~\-/]*$", "an absolute path")]
HttpUrl = Annotated[
    str,
    _pattern(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?(/[A-Za-z0-9._~\-/]*)?$", "an http(s) URL"),
]
PromDuration = Annotated[
    str, _pattern(r"^(?=.)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$", "a Prometheus duration")
]
_CRON_FIELD = r"(\*|\d+|\d+-\d+)(/\d+)?(,(\*|\d+|\d+-\d+)(/\d+)?)*"
CronSchedule = Annotated[
    str,
    _pattern(
        rf"^(@(hourly|daily|weekly|monthly|yearly)|{_CRON_FIELD}( {_CRON_FIELD}){{4}})$",
        "a cron schedule",
    ),
]
RegistryHost = Annotated[str, _pattern(r"^[a-z0-9.\-]+(:\d+)?$", "a registry host[:port]")]
RepositoryPath = Annotated[str, _pattern(r"^[a-z0-9]+([._\-/][a-z0-9]+)*$", "a repository path")]
Platform = Annotated[str, _pattern(r"^linux/(amd64|arm64)$", "'linux/amd64' or 'linux/arm64'")]


def duration_seconds(value: str) -> float:
    """Seconds in a Prometheus duration ("1m30s" -> 90)."""
    units = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", value))


CpuQuantity = Annotated[str, _quantity(cpu_cores)]
MemoryQuantity = Annotated[str, _quantity(memory_bytes)]
