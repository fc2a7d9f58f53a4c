"""Rules over one workload at a time: resources, images, probes, security context, env secrets.

Each rule is a plain function ``(resource_type, props, config) -> list[str]`` over the
Kubernetes object; non-workload types yield no messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .config import (
    ImageTagConfig,
    ProbesConfig,
    ResourcesConfig,
    SecretEnvConfig,
    WorkloadConfig,
)
from .k8s import (
    GPU_RESOURCE,
    LONG_RUNNING,
    Container,
    PodTemplate,
    container_label,
    containers,
    describe,
    get,
    is_unknown,
    namespace_of,
    pod_template,
    quantity,
)


def _template(
    resource_type: str, props: Mapping[str, Any], config: WorkloadConfig
) -> PodTemplate | None:
    """The pod template to check, or None for non-workloads and exempt namespaces."""
    if namespace_of(props) in config.exempt_namespaces:
        return None
    return pod_template(resource_type, props)


def _where(resource_type: str, props: Mapping[str, Any], c: Container) -> str:
    return f"{describe(resource_type, props)} {container_label(c)}"


def check_container_resources(
    resource_type: str, props: Mapping[str, Any], config: ResourcesConfig = ResourcesConfig()
) -> list[str]:
    """Every container requests and limits the configured resources (default cpu and memory),
    requests do not exceed limits, and a GPU request equals its limit."""
    template = _template(resource_type, props, config)
    if template is None:
        return []
    out: list[str] = []
    for c in containers(template):
        res = get(c.spec, "resources", default={})
        if is_unknown(res):
            continue
        for kind in ("requests", "limits"):
            values = get(res, kind, default={}) or {}
            if is_unknown(values):
                continue
            missing = [r for r in config.required_resources if values.get(r) in (None, "")]
            if missing:
                out.append(
                    f"{_where(resource_type, props, c)}: {c.path}.resources.{kind} has no "
                    f"{', '.join(missing)}. Every container must set requests and limits for "
                    f"{', '.join(config.required_resources)} so the scheduler can place it and "
                    f"the kubelet can bound it; add them (e.g. requests {{cpu: 250m, memory: "
                    f"256Mi}}, limits {{cpu: '1', memory: 512Mi}}); for models set "
                    f"mlplatform:models[].resources."
                )
        out.extend(_requests_within_limits(resource_type, props, c, res))
    return out


def _requests_within_limits(
    resource_type: str, props: Mapping[str, Any], c: Container, res: Mapping[str, Any]
) -> list[str]:
    requests = get(res, "requests", default={}) or {}
    limits = get(res, "limits", default={}) or {}
    if is_unknown(requests) or is_unknown(limits):
        return []
    out = []
    for name in sorted(set(requests) & set(limits)):
        req, lim = quantity(requests[name]), quantity(limits[name])
        if req is None or lim is None:
            continue
        if name == GPU_RESOURCE and req != lim:
            out.append(
                f"{_where(resource_type, props, c)}: {GPU_RESOURCE} request {requests[name]} "
                f"differs from its limit {limits[name]}; extended resources cannot be "
                f"overcommitted, so set the request equal to the limit (or only the limit)."
            )
        elif req > lim:
            out.append(
                f"{_where(resource_type, props, c)}: resources.requests.{name} = "
                f"{requests[name]} exceeds resources.limits.{name} = {limits[name]}; the API "
                f"server rejects this. Lower the request or raise the limit."
            )
    return out


def image_tag_problem(image: str, mutable_tags: tuple[str, ...]) -> str | None:
    """Why ``image`` is mutable, or None when it is pinned by digest or an immutable tag."""
    if not image.strip():
        return "has no image"
    if "@" in image:
        digest = image.split("@", 1)[1]
        if re.fullmatch(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}", digest):
            return None
        return f"has a malformed digest '@{digest}'"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"uses image '{image}' without a tag, which means ':latest'"
    tag = last.rsplit(":", 1)[1]
    if tag in mutable_tags:
        return f"uses the mutable tag ':{tag}' in image '{image}'"
    return None


def check_immutable_image_tags(
    resource_type: str, props: Mapping[str, Any], config: ImageTagConfig = ImageTagConfig()
) -> list[str]:
    """Images are pinned by digest or an immutable (e.g. content-hash) tag, never `:latest`
    or untagged: a mutable tag lets two pods of one ReplicaSet run different code."""
    template = _template(resource_type, props, config)
    if template is None:
        return []
    out = []
    for c in containers(template):
        image = get(c.spec, "image", default="")
        if is_unknown(image):
            continue  # built during the update; checked again with the real reference
        problem = image_tag_problem(str(image), config.mutable_tags)
        if problem:
            out.append(
                f"{_where(resource_type, props, c)} {problem} ({c.path}.image). Pin the image "
                f"by digest (name@sha256:...) or an immutable tag; for models, set "
                f"mlplatform:models[].image that way or leave it unset so ModelImage builds a "
                f"content-hash tag. Treated as mutable: no tag, {', '.join(config.mutable_tags)}."
            )
    return out


def check_probes(
    resource_type: str, props: Mapping[str, Any], config: ProbesConfig = ProbesConfig()
) -> list[str]:
    """Containers of long-running workloads define the configured probes (default readiness
    and liveness); Jobs and CronJobs run to completion and are exempt."""
    if resource_type not in LONG_RUNNING:
        return []
    template = _template(resource_type, props, config)
    if template is None:
        return []
    out = []
    for c in containers(template, include_init=False):
        missing = [p for p in config.required_probes if not get(c.spec, p)]
        if missing:
            out.append(
                f"{_where(resource_type, props, c)} has no {', '.join(missing)} "
                f"({c.path}). Without a readiness probe a Service sends traffic to pods that "
                f"have not loaded the model; without a liveness probe a hung server is never "
                f"restarted. Add httpGet probes, e.g. /v2/health/ready and /v2/health/live "
                f"on port 'http'."
            )
    return out


def _effective(c: Container, pod_spec: Mapping[str, Any], key: str) -> Any:
    value = get(c.spec, "securityContext", key)
    return value if value is not None else get(pod_spec, "securityContext", key)


def check_non_root(
    resource_type: str, props: Mapping[str, Any], config: WorkloadConfig = WorkloadConfig()
) -> list[str]:
    """Every container runs as non-root (runAsNonRoot true, runAsUser not 0, on the container or
    the pod) with allowPrivilegeEscalation false and not privileged."""
    template = _template(resource_type, props, config)
    if template is None:
        return []
    out = []
    for c in containers(template):
        where = _where(resource_type, props, c)
        non_root, user = (
            _effective(c, template.spec, "runAsNonRoot"),
            _effective(c, template.spec, "runAsUser"),
        )
        if not is_unknown(non_root) and non_root is not True:
            out.append(
                f"{where}: runAsNonRoot is {non_root!r} ({c.path}.securityContext and "
                f"{template.path}.securityContext); it must be true. Set "
                f"securityContext.runAsNonRoot: true and a non-zero runAsUser (the model images "
                f"run as an unprivileged user)."
            )
        if not is_unknown(user) and user is not None and quantity(user) == 0:
            out.append(f"{where}: runAsUser is 0 (root); set a non-zero UID such as 10001.")
        escalation = get(c.spec, "securityContext", "allowPrivilegeEscalation")
        if not is_unknown(escalation) and escalation is not False:
            out.append(
                f"{where}: {c.path}.securityContext.allowPrivilegeEscalation is "
                f"{escalation!r}; it must be false (the default lets setuid binaries gain "
                f"privileges). Set allowPrivilegeEscalation: false."
            )
        if get(c.spec, "securityContext", "privileged") is True:
            out.append(
                f"{where}: privileged is true; remove it, model servers need no host access."
            )
    return out


def check_restricted_extras(
    resource_type: str, props: Mapping[str, Any], config: WorkloadConfig = WorkloadConfig()
) -> list[str]:
    """The remaining Pod Security "restricted" controls a namespace admission check would reject:
    capabilities drop ALL (only NET_BIND_SERVICE may be added), a RuntimeDefault or Localhost
    seccomp profile, no host namespaces, host ports or hostPath volumes."""
    template = _template(resource_type, props, config)
    if template is None:
        return []
    obj, spec = describe(resource_type, props), template.spec
    out = [
        f"{obj}: {template.path}.{k} is true; Pod Security 'restricted' forbids host "
        f"namespaces. Remove it."
        for k in ("hostNetwork", "hostPID", "hostIPC")
        if get(spec, k) is True
    ]
    volumes = get(spec, "volumes", default=[]) or []
    if not is_unknown(volumes):
        out += [
            f"{obj}: volume '{get(v, 'name')}' is a hostPath; use an emptyDir, ConfigMap or PVC."
            for v in volumes
            if isinstance(v, Mapping) and get(v, "hostPath") is not None
        ]
    for c in containers(template):
        where, sc = _where(resource_type, props, c), f"{c.path}.securityContext"
        drop = get(c.spec, "securityContext", "capabilities", "drop", default=[]) or []
        add = get(c.spec, "securityContext", "capabilities", "add", default=[]) or []
        if not is_unknown(drop) and "ALL" not in drop:
            out.append(f"{where}: {sc}.capabilities.drop must include 'ALL' (has {list(drop)}).")
        if not is_unknown(add) and set(add) - {"NET_BIND_SERVICE"}:
            out.append(
                f"{where}: {sc}.capabilities.add has {sorted(set(add) - {'NET_BIND_SERVICE'})}; "
                f"only NET_BIND_SERVICE is allowed."
            )
        seccomp = _effective(c, spec, "seccompProfile")
        kind = get(seccomp, "type")
        if not is_unknown(kind) and kind not in ("RuntimeDefault", "Localhost"):
            out.append(
                f"{where}: seccompProfile.type is {kind!r}; set securityContext.seccompProfile "
                f"{{type: RuntimeDefault}} on the pod or the container."
            )
        ports = get(c.spec, "ports", default=[]) or []
        if not is_unknown(ports) and any(
            isinstance(p, Mapping) and get(p, "hostPort") for p in ports
        ):
            out.append(f"{where}: sets a hostPort; expose it through a Service instead.")
    return out


def check_no_plain_secrets(
    resource_type: str, props: Mapping[str, Any], config: SecretEnvConfig = SecretEnvConfig()
) -> list[str]:
    """Env vars whose names look secret (PASSWORD, TOKEN, SECRET, ..._KEY) come from a Secret
    via valueFrom.secretKeyRef, never as a literal `value` stored in the pod spec and state."""
    template = _template(resource_type, props, config)
    if template is None:
        return []
    patterns = [re.compile(p, re.IGNORECASE) for p in config.secret_name_patterns]
    out = []
    for c in containers(template):
        env = get(c.spec, "env", default=[]) or []
        if is_unknown(env):
            continue
        for i, var in enumerate(env):
            name = get(var, "name", default="")
            if not isinstance(name, str) or name in config.allowed_names:
                continue
            # An unknown value is still a literal: it will be written into the pod spec.
            value = get(var, "value")
            if value in (None, "") or not any(p.search(name) for p in patterns):
                continue
            out.append(
                f"{_where(resource_type, props, c)}: env var '{name}' ({c.path}.env[{i}]) has "
                f"a literal value (not shown), which anyone who can read the "
                f"{describe(resource_type, props).split()[0]} or the Pulumi state can see. Put it "
                f"in a Kubernetes Secret and use valueFrom.secretKeyRef; if it is not a secret, "
                f"add '{name}' to allowedNames of this policy."
            )
    return out
