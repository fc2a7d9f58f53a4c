"""Rules that relate several config values; each issue names the exact key path it is about.

Pure: takes a validated StackConfig (and, to check model sources, the model folders the loader
read from disk), returns ConfigIssues. The loader raises them as one ConfigError before any
resource exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlplatform.config import AutoscalingConfig, ModelConfig, SignalsConfig, StackConfig
from mlplatform.config.errors import ConfigIssue, key_path, rm_command, set_command
from mlplatform.core.quantity import cpu_cores, memory_bytes
from mlplatform.plan.autoscaling import prometheus_address
from mlplatform.plan.image import SOURCE_ARG, ModelFolder, foreign_copies
from mlplatform.plan.routes import plan_route


class _Issues:
    def __init__(self, stack: str):
        self.stack = stack
        self.items: list[ConfigIssue] = []

    def add(
        self,
        parts: tuple[str | int, ...],
        value: Any,
        problem: str,
        allowed: str,
        fix: str | None = None,
        example: Any = "<value>",
    ) -> None:
        path = key_path(*parts)
        self.items.append(
            ConfigIssue(
                path, value, problem, allowed, fix or set_command(self.stack, path, example)
            )
        )


def cross_check(
    config: StackConfig, stack: str, model_folders: Mapping[str, ModelFolder] | None = None
) -> list[ConfigIssue]:
    """Every cross-value rule; an empty list means the config is consistent.

    `model_folders` (folder name -> its Dockerfile, from `mlplatform.sources`) turns on the
    checks of `source` keys; None skips them (no checkout at hand).
    """
    issues = _Issues(stack)
    _unique(issues, "models", [m.name for m in config.models])
    _unique(issues, "gpuPools", [p.name for p in config.gpu_pools])
    _unique(issues, "batchJobs", [j.name for j in config.batch_jobs])
    for index in range(len(config.gpu_pools)):
        _check_pool(issues, index, config)
    for index, model in enumerate(config.models):
        _check_resources(issues, ("models", index, "resources"), model.resources)
        _check_scaling(issues, index, model, config)
        _check_gpu(issues, index, model, config)
        _check_canary(issues, index, model, config)
        if model_folders is not None:
            _check_sources(issues, index, model, model_folders)
    _check_pool_baseline(issues, config)
    _check_routes(issues, config)
    _check_jobs(issues, config)
    _check_misc(issues, config)
    return issues.items


def _unique(issues: _Issues, key: str, names: list[str]) -> None:
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            issues.add(
                (key, index, "name"),
                name,
                f"duplicate name; {key}[{first[name]}] already uses it",
                "a name unique within " + key,
                example=f"{name}-2",
            )
        first.setdefault(name, index)


def _check_resources(issues: _Issues, base: tuple[str | int, ...], resources: Any) -> None:
    for kind, parse in (("cpu", cpu_cores), ("memory", memory_bytes)):
        request = getattr(resources.requests, kind)
        limit = getattr(resources.limits, kind)
        if parse(request) > parse(limit):
            issues.add(
                (*base, "requests", kind),
                request,
                f"request {request} exceeds the limit {limit}",
                f"a {kind} request <= limits.{kind} ({limit})",
                example=limit,
            )


def _check_scaling(issues: _Issues, index: int, model: ModelConfig, config: StackConfig) -> None:
    scaling = config.effective_autoscaling(model)
    own = model.autoscaling.model_fields_set
    base = (
        ("models", index, "autoscaling")
        if own & {"min_replicas", "max_replicas"}
        else ("autoscaling",)
    )
    if scaling.max_replicas < scaling.min_replicas:
        issues.add(
            (*base, "maxReplicas"),
            scaling.max_replicas,
            f"maxReplicas {scaling.max_replicas} is below minReplicas {scaling.min_replicas} "
            f"for model {model.name!r}",
            f"an integer >= {scaling.min_replicas}",
            example=scaling.min_replicas,
        )
    own_signals = "signals" in model.autoscaling.model_fields_set
    signals_base = (
        ("models", index, "autoscaling", "signals") if own_signals else ("autoscaling", "signals")
    )
    targets = scaling.signals.targets()
    if not targets:
        issues.add(
            signals_base,
            {},
            f"no autoscaling signal is set for model {model.name!r}",
            "at least one of cpu, memory, inFlight, rps, latencyP99Ms, gpuUtilization",
            example=70,
            fix=set_command(issues.stack, key_path(*signals_base, "cpu"), 70),
        )
    _check_signals(issues, signals_base, model, scaling, config)
    min_available = model.pdb.min_available
    if min_available is not None and min_available >= scaling.min_replicas:
        issues.add(
            ("models", index, "pdb", "minAvailable"),
            min_available,
            f"PDB minAvailable {min_available} must be below the HPA minReplicas "
            f"{scaling.min_replicas}, or no pod could ever be evicted (node drains hang)",
            f"an integer 1..{max(scaling.min_replicas - 1, 1)} with minReplicas >= 2",
            fix=rm_command(issues.stack, key_path("models", index, "pdb", "minAvailable"))
            + " (the default is minReplicas-1), or raise minReplicas",
        )
    if model.vpa is not None and model.vpa.mode != "off":
        overlap = sorted(
            set(model.vpa.controlled_resources) & set(scaling.signals.resource_signals())
        )
        if overlap:
            issues.add(
                ("models", index, "vpa", "controlledResources"),
                list(model.vpa.controlled_resources),
                f"VPA mode {model.vpa.mode!r} and the autoscaler's "
                f"{' and '.join(f'signals.{r}' for r in overlap)} would both act on "
                f"{', '.join(overlap)} and fight each other",
                "resources no autoscaling signal targets, or VPA mode 'off'",
                example='["memory"]' if overlap == ["cpu"] else "<value>",
                fix=set_command(issues.stack, key_path("models", index, "vpa", "mode"), "off")
                + ", or scale on another signal (e.g. autoscaling.signals: {inFlight: 0.5})"
                " and keep the VPA on that resource",
            )


def _signal_key(name: str) -> str:
    """The YAML key of a signal attribute ('in_flight' -> 'inFlight')."""
    return SignalsConfig.model_fields[name].alias or name


def _check_signals(
    issues: _Issues,
    base: tuple[str | int, ...],
    model: ModelConfig,
    scaling: AutoscalingConfig,
    config: StackConfig,
) -> None:
    """Each Prometheus signal must be readable: a Prometheus that scrapes the model, and (for GPU
    utilization) a GPU to measure."""
    prometheus = scaling.signals.prometheus_signals()
    for name in prometheus:
        key = (*base, _signal_key(name))
        value = getattr(scaling.signals, name)
        if name == "gpu_utilization" and model.resources.gpus == 0:
            issues.add(
                key,
                value,
                f"model {model.name!r} requests no GPU, so dcgm-exporter reports no utilization "
                "for its pods and the signal would never have a value",
                "gpuUtilization only with resources.gpus > 0; cpu, inFlight or latencyP99Ms "
                "for CPU models",
                fix=rm_command(issues.stack, key_path(*key)),
            )
    if not prometheus:
        return
    first = (*base, _signal_key(prometheus[0]))
    if not config.monitoring.enabled:
        issues.add(
            first,
            getattr(scaling.signals, prometheus[0]),
            f"Prometheus signals ({', '.join(_signal_key(n) for n in prometheus)}) are read "
            "from the monitoring stack's Prometheus, but monitoring is off",
            "Prometheus signals with monitoring.enabled true; cpu/memory without it",
            fix=set_command(issues.stack, key_path("monitoring", "enabled"), "true"),
        )
    elif prometheus_address(config) is None:
        issues.add(
            ("autoscaling", "prometheusAddress"),
            None,
            f"model {model.name!r} scales on Prometheus signals, and with monitoring.mode "
            f"{config.monitoring.mode!r} the platform runs no Prometheus of its own to ask",
            "the URL of the Prometheus that scrapes the model pods",
            fix=set_command(
                issues.stack,
                key_path("autoscaling", "prometheusAddress"),
                "http://prometheus-operated.monitoring.svc:9090",
            ),
        )


def _check_gpu(issues: _Issues, index: int, model: ModelConfig, config: StackConfig) -> None:
    gpus = model.resources.gpus
    names = [p.name for p in config.gpu_pools]
    if gpus > 0 and model.gpu_pool is None:
        issues.add(
            ("models", index, "gpuPool"),
            None,
            f"model {model.name!r} requests {gpus} GPU(s) but names no GPU pool",
            "the name of a pool in mlplatform:gpuPools: " + (", ".join(names) or "(none defined)"),
            example=names[0] if names else "<pool>",
        )
        return
    if model.gpu_pool is None:
        return
    pool = config.pool_named(model.gpu_pool)
    if pool is None:
        issues.add(
            ("models", index, "gpuPool"),
            model.gpu_pool,
            "no GPU pool has this name",
            "one of: " + (", ".join(names) or "(no pools defined in mlplatform:gpuPools)"),
            example=names[0] if names else "<pool>",
        )
        return
    if gpus == 0:
        issues.add(
            ("models", index, "resources", "gpus"),
            0,
            f"model runs on GPU pool {pool.name!r} but requests no GPU, so it would occupy "
            "tainted GPU nodes without using them",
            "an integer 1..16 with a gpuPool",
            example=1,
        )
        return
    scaling = config.effective_autoscaling(model)
    canary = model.canary.replicas if model.canary else 0
    # Rolling updates run with maxUnavailable 0 and maxSurge 1: at full scale one extra pod
    # must still fit, or the rollout waits forever for a GPU.
    needed = (scaling.max_replicas + canary + 1) * gpus
    if needed > pool.gpu_capacity:
        fitting = max(pool.gpu_capacity // gpus - canary - 1, 0)
        issues.add(
            ("models", index, "autoscaling", "maxReplicas"),
            scaling.max_replicas,
            f"(maxReplicas {scaling.max_replicas} + canary {canary} + 1 rollout surge) x "
            f"{gpus} GPU(s) per pod = {needed} exceeds pool {pool.name!r} capacity "
            f"{pool.gpu_capacity} ({pool.capacity_nodes} node(s) x {pool.gpus_per_node})",
            f"maxReplicas <= {fitting}, or a larger pool",
            example=fitting,
        )
    if gpus > pool.gpus_per_node:
        issues.add(
            ("models", index, "resources", "gpus"),
            gpus,
            f"a pod asks for {gpus} GPUs but pool {pool.name!r} nodes have {pool.gpus_per_node}",
            f"an integer 1..{pool.gpus_per_node}",
            example=pool.gpus_per_node,
        )


def _check_pool_baseline(issues: _Issues, config: StackConfig) -> None:
    """The minimum replicas of all models on a pool must fit at once, or some never start."""
    for index, pool in enumerate(config.gpu_pools):
        baseline = sum(
            config.effective_autoscaling(m).min_replicas * m.resources.gpus
            for m in config.models
            if m.gpu_pool == pool.name
        )
        if baseline > pool.gpu_capacity:
            nodes = -(-baseline // pool.gpus_per_node)
            issues.add(
                ("gpuPools", index, "nodeCount"),
                pool.node_count,
                f"the models on pool {pool.name!r} need {baseline} GPUs at minReplicas but "
                f"the pool has {pool.gpu_capacity}",
                f"nodeCount >= {nodes}",
                example=nodes,
            )


def _check_pool(issues: _Issues, index: int, config: StackConfig) -> None:
    pool = config.gpu_pools[index]
    base = ("gpuPools", index)
    if pool.backend == "local":
        if pool.node_count is None:
            issues.add(
                (*base, "nodeCount"),
                None,
                "backend 'local' needs the number of nodes to simulate",
                "an integer 1..1000",
                example=1,
            )
        if pool.existing is not None:
            issues.add(
                (*base, "existing"),
                pool.existing.model_dump(by_alias=True),
                "settings for backend 'existing' on a 'local' pool",
                "no 'existing' block with backend 'local'",
                fix=rm_command(issues.stack, key_path(*base, "existing")),
            )
        return
    if pool.local is not None:
        issues.add(
            (*base, "local"),
            pool.local.model_dump(by_alias=True),
            "settings for backend 'local' on an 'existing' pool",
            "no 'local' block with backend 'existing'",
            fix=rm_command(issues.stack, key_path(*base, "local")),
        )
    existing = pool.existing
    if existing is None:
        issues.add(
            (*base, "existing"),
            None,
            "backend 'existing' needs to know which nodes to use",
            "{nodeNames: [...]} or {nodeSelector: {...}}",
            example='{"nodeNames": ["gpu-node-1"]}',
        )
        return
    if bool(existing.node_names) == bool(existing.node_selector):
        issues.add(
            (*base, "existing", "nodeSelector"),
            existing.node_selector,
            "give exactly one of existing.nodeNames and existing.nodeSelector",
            "a label map (and no nodeNames), or nodeNames alone",
            example='{"nvidia.com/gpu.present": "true"}',
        )
    if existing.node_selector and pool.node_count is None:
        issues.add(
            (*base, "nodeCount"),
            None,
            "a selector-based pool needs the expected node count for GPU capacity planning",
            "an integer 1..1000",
            example=2,
        )
    if existing.node_names and pool.node_count not in (None, len(existing.node_names)):
        issues.add(
            (*base, "nodeCount"),
            pool.node_count,
            f"nodeCount differs from the {len(existing.node_names)} names in nodeNames",
            f"{len(existing.node_names)} or unset",
            fix=rm_command(issues.stack, key_path(*base, "nodeCount")),
        )


def _check_canary(issues: _Issues, index: int, model: ModelConfig, config: StackConfig) -> None:
    canary = model.canary
    if canary is None:
        return
    if canary.version == model.version:
        issues.add(
            ("models", index, "canary", "version"),
            canary.version,
            "the canary carries the stable version; it would be indistinguishable",
            f"a version other than {model.version!r}",
            example="v2",
        )
    ingress = config.ingress
    if canary.weight > 0 and ingress.api == "ingress" and ingress.controller != "nginx":
        issues.add(
            ("models", index, "canary", "weight"),
            canary.weight,
            "a plain Ingress cannot split traffic by weight; only ingress-nginx's canary "
            "annotations (ingress.controller 'nginx') or the Gateway API (ingress.api "
            "'gateway', an HTTPRoute with weighted backends) can",
            "0 with ingress.api 'ingress' and a 'generic' controller",
            example=0,
        )
    if canary.weight > 0 and not (config.ingress.enabled and model.ingress.enabled):
        issues.add(
            ("models", index, "canary", "weight"),
            canary.weight,
            "canary traffic is split at the ingress, which is disabled for this model",
            "0, or enable ingress.enabled and models[].ingress.enabled",
            example=0,
        )


def _check_sources(
    issues: _Issues, index: int, model: ModelConfig, folders: Mapping[str, ModelFolder]
) -> None:
    candidates: list[tuple[tuple[str | int, ...], str]] = []
    if model.image is None:
        candidates.append((("models", index, "source"), model.source_dir))
    canary = model.canary
    if (
        canary is not None
        and canary.image is None
        and canary.source not in (None, model.source_dir)
    ):
        candidates.append((("models", index, "canary", "source"), canary.source))
    available = sorted(folders)
    for parts, source in candidates:
        folder = folders.get(source)
        if folder is None:
            derived = (
                " (derived from the model name; set `source` to choose another folder)"
                if parts[-1] == "source" and len(parts) == 3 and model.source is None
                else ""
            )
            issues.add(
                parts,
                source,
                f"models/{source}/Dockerfile does not exist{derived}",
                "a folder with a Dockerfile: " + (", ".join(available) or "(none yet)"),
                example=available[0] if available else "<folder>",
            )
            continue
        for line, path in foreign_copies(source, folder.dockerfile, set(folders)):
            issues.add(
                parts,
                source,
                f"models/{source}/Dockerfile line {line} copies {path!r}, another model's "
                f"folder: the image would hold that model's code under this model's name (a "
                f"copied folder keeps the Dockerfile of the one it came from)",
                f"a Dockerfile that copies its own folder as ${{{SOURCE_ARG}}}/ (the image "
                "component passes it), never another model's",
                fix=f"in models/{source}/Dockerfile, replace {path!r} by "
                f"'${{{SOURCE_ARG}}}/...' (see models/README.md, 'Add a model')",
            )


def _check_routes(issues: _Issues, config: StackConfig) -> None:
    ingress = config.ingress
    if not ingress.enabled:
        return
    seen: dict[tuple[str | None, str], int] = {}
    for index, model in enumerate(config.models):
        if not model.ingress.enabled:
            continue
        if ingress.routing == "host" and model.ingress.host is None and ingress.domain is None:
            issues.add(
                ("ingress", "domain"),
                None,
                f"host routing needs a domain for model {model.name!r}",
                "a DNS name (models get <name>.<domain>)",
                example="ml.example.com",
            )
            return
        route = plan_route(model, ingress)
        key = (route.host, route.path)
        if key in seen:
            issues.add(
                ("models", index, "ingress", "path" if ingress.routing == "path" else "host"),
                route.path if ingress.routing == "path" else route.host,
                f"route {route.host or '*'}{route.path} is already used by models[{seen[key]}]",
                "a route unique across models",
                example=f"/models/{model.name}",
            )
        seen.setdefault(key, index)
        if ingress.tls.enabled and route.host is None:
            issues.add(
                ("ingress", "host"),
                None,
                "TLS needs a host name, but path routing without ingress.host matches any host",
                "a DNS name covered by the certificate",
                example="ml.example.com",
            )
            return


def _check_jobs(issues: _Issues, config: StackConfig) -> None:
    names = [m.name for m in config.models]
    for index, job in enumerate(config.batch_jobs):
        if job.model not in names:
            issues.add(
                ("batchJobs", index, "model"),
                job.model,
                "no model has this name",
                "one of: " + (", ".join(names) or "(no models)"),
                example=names[0] if names else "<model>",
            )
        elif job.resources is not None:
            _check_resources(issues, ("batchJobs", index, "resources"), job.resources)
        mount = job.data.mount_path.rstrip("/") + "/"
        for key in ("input", "output"):
            value = getattr(job, key)
            if not value.startswith(mount):
                issues.add(
                    ("batchJobs", index, key),
                    value,
                    f"the path is outside the data volume mounted at {job.data.mount_path}",
                    f"an absolute path starting with {mount}",
                    example=mount + value.rsplit("/", 1)[-1],
                )
        if job.input == job.output:
            issues.add(
                ("batchJobs", index, "output"),
                job.output,
                "output would overwrite the input",
                "a path other than input",
                example=job.output + ".out",
            )


def _check_misc(issues: _Issues, config: StackConfig) -> None:
    if config.registry.username is not None and config.registry.server is None:
        issues.add(
            ("registry", "username"),
            config.registry.username,
            "a registry user without registry.server has nowhere to log in",
            "unset, or set registry.server too",
            fix=set_command(issues.stack, key_path("registry", "server"), "registry.example.com"),
        )
    monitoring = config.monitoring
    if monitoring.mode == "operator" and (monitoring.alertmanager or monitoring.storage_size):
        key = "alertmanager" if monitoring.alertmanager else "storageSize"
        issues.add(
            ("monitoring", key),
            getattr(monitoring, "alertmanager" if key == "alertmanager" else "storage_size"),
            "only applies to monitoring.mode 'deploy'; the operator's stack owns it",
            "unset with mode 'operator'",
            fix=rm_command(issues.stack, key_path("monitoring", key)),
        )
    reserved: dict[str, Callable[[], str]] = {
        config.ingress.controller_namespace: lambda: "ingress.controllerNamespace",
        monitoring.namespace: lambda: "monitoring.namespace",
    }
    for key, namespace in (
        ("models", config.namespaces.models),
        ("batch", config.namespaces.batch),
    ):
        if namespace in reserved and (key != "batch" or namespace is not None):
            issues.add(
                ("namespaces", key),
                namespace,
                f"the namespace is also {reserved[namespace]()}; model workloads need their "
                "own namespace for Pod Security and default-deny NetworkPolicies",
                "a namespace not used by ingress or monitoring",
                example="ml-models",
            )
