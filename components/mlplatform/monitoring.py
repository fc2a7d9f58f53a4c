"""MonitoringStack: Prometheus, Grafana, Alertmanager or Prometheus Operator objects for models.

Everything model-specific is generated from each model's SLO by the pure planners in
``components/plan/monitoring_*.py``; this module only turns those plans into resources.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlplatform.config import MonitoringConfig, StackConfig
from mlplatform.core.digest import checksum
from mlplatform.core.names import PROMETHEUS_PORT, prometheus_url
from mlplatform.plan.monitoring import dashboards as dashboards
from mlplatform.plan.monitoring import prometheus as prom
from mlplatform.plan.monitoring import rules as rules
from mlplatform.plan.monitoring import workloads as work
from mlplatform.plan.monitoring.inputs import MonitoredModel, monitored_models

__all__ = ["MonitoredModel", "MonitoringStack", "MonitoringStackArgs"]

MONITORING_API = "monitoring.coreos.com/v1"
# The label kube-prometheus-stack's Grafana sidecar watches for dashboard ConfigMaps.
GRAFANA_DASHBOARD_LABEL = {"grafana_dashboard": "1"}


def _object_name(text: str) -> str:
    """A Kubernetes object name within 63 characters; long ones keep a digest to stay distinct."""
    if len(text) <= 63:
        return text
    return f"{text[:54].rstrip('-')}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _yaml(document: object) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=120)


class MonitoringStackArgs(BaseModel):
    """Arguments of MonitoringStack."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    models: list[MonitoredModel] = Field(
        description="Models to watch, each with its SLO. Required; may be empty (then only the "
        "overview dashboard and no rules); (namespace, name) pairs must be unique."
    )
    settings: MonitoringConfig = Field(
        default_factory=MonitoringConfig,
        description="Mode, namespace, retention, images... (the `mlplatform:monitoring` keys). "
        "Default: MonitoringConfig() defaults.",
    )
    gateway_namespace: str | None = Field(
        default=None,
        description="Namespace of the platform's gateway pods (Traefik) to scrape every "
        "`settings.gateway_scrape_interval`: the in-flight autoscaling signal reads them. "
        "Default none: no gateway job.",
    )
    grafana_admin_password: Any = Field(
        default=None,
        repr=False,
        description="pulumi.Input[str] with the Grafana admin password, from a secret. Default "
        "none: Grafana then serves dashboards read-only to anonymous viewers with login and "
        "basic auth disabled (no default admin/admin).",
    )

    @classmethod
    def from_stack_config(
        cls, config: StackConfig, grafana_admin_password: Any = None
    ) -> MonitoringStackArgs:
        """Every model of a validated stack config, with its `monitoring` settings."""
        ingress = config.ingress
        return cls(
            models=monitored_models(config),
            settings=config.monitoring,
            gateway_namespace=ingress.controller_namespace if ingress.deploys_gateway else None,
            grafana_admin_password=grafana_admin_password,
        )

    @field_validator("grafana_admin_password")
    @classmethod
    def _password(cls, value: Any) -> Any:
        if value is None or isinstance(value, pulumi.Output):
            return value
        if not isinstance(value, str) or not value:
            raise ValueError(
                f"expected a non-empty string or pulumi Output, got {type(value).__name__}; pass "
                "pulumi.Config('mlplatform').get_secret('grafanaAdminPassword') or leave it unset"
            )
        return value

    @model_validator(mode="after")
    def _unique_models(self) -> MonitoringStackArgs:
        seen: dict[tuple[str, str], int] = {}
        for index, model in enumerate(self.models):
            key = (model.namespace, model.name)
            if key in seen:
                raise ValueError(
                    f"models[{index}] repeats model {model.name!r} in namespace "
                    f"{model.namespace!r} (already models[{seen[key]}]); each model is listed once"
                )
            seen[key] = index
        return self


class MonitoringStack(pulumi.ComponentResource):
    """Scraping, recording/alerting rules and dashboards for every model, from its SLO."""

    namespace: pulumi.Output[str]
    """Namespace holding the monitoring objects."""
    prometheus_url: pulumi.Output[str | None]
    """In-cluster URL of our Prometheus (deploy mode); None in operator mode."""
    grafana_url: pulumi.Output[str | None]
    """In-cluster URL of our Grafana (deploy mode); None in operator mode."""
    alertmanager_url: pulumi.Output[str | None]
    """In-cluster URL of the Alertmanager when deployed, else None."""
    dashboard_uids: pulumi.Output[list[str]]
    """Grafana uids of the overview and per-model dashboards (open at /d/<uid>)."""
    alert_names: pulumi.Output[list[str]]
    """Distinct alert names generated across all models."""

    def __init__(
        self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:monitoring:MonitoringStack", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        boards = dashboards.dashboards(args.models)
        rule_files = {
            rules.rule_file_name(model): rules.rule_groups(model) for model in args.models
        }

        if args.settings.mode == "deploy":
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata={
                    "name": args.settings.namespace,
                    "labels": {"mlplatform.io/role": "monitoring"},
                },
                opts=self._child,
            )
            self._ns: pulumi.Input[str] = namespace.metadata.apply(lambda meta: meta.name)
            dashboard_maps = self._dashboard_maps(boards, {})
            urls = self._deploy(rule_files, dashboard_maps)
        else:
            self._ns = args.settings.namespace
            self._dashboard_maps(boards, GRAFANA_DASHBOARD_LABEL)
            self._operator_objects()
            urls = {"prometheus": None, "grafana": None, "alertmanager": None}

        self.namespace = pulumi.Output.from_input(self._ns)
        self.prometheus_url = pulumi.Output.from_input(urls["prometheus"])
        self.grafana_url = pulumi.Output.from_input(urls["grafana"])
        self.alertmanager_url = pulumi.Output.from_input(urls["alertmanager"])
        self.dashboard_uids = pulumi.Output.from_input(list(boards))
        self.alert_names = pulumi.Output.from_input(
            sorted({rule["alert"] for model in args.models for rule in rules.alert_rules(model)})
        )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "prometheus_url": self.prometheus_url,
                "grafana_url": self.grafana_url,
                "alertmanager_url": self.alertmanager_url,
                "dashboard_uids": self.dashboard_uids,
                "alert_names": self.alert_names,
            }
        )

    # --- helpers ---------------------------------------------------------------------------
    def _meta(self, name: str, app: str | None = None, extra: dict[str, str] | None = None) -> dict:
        labels = (
            work.labels(self._name, app)
            if app
            else {
                "app.kubernetes.io/part-of": "mlplatform",
                "app.kubernetes.io/managed-by": "pulumi",
            }
        )
        return {"name": name, "namespace": self._ns, "labels": {**labels, **(extra or {})}}

    def _url(self, service: str, port: int) -> str:
        return f"http://{service}.{self._args.settings.namespace}.svc:{port}"

    def _dashboard_maps(
        self, boards: dict[str, dict], extra_labels: dict[str, str]
    ) -> list[pulumi.Output[str]]:
        names = []
        for uid, board in boards.items():
            config_map = k8s.core.v1.ConfigMap(
                f"{self._name}-dashboard-{uid}",
                metadata=self._meta(
                    _object_name(f"{self._name}-dashboard-{uid}"), "grafana", extra_labels
                ),
                data={dashboards.dashboard_file_name(uid): json.dumps(board, indent=1)},
                opts=self._child,
            )
            names.append(config_map.metadata.apply(lambda meta: meta.name))
        return names

    def _service(self, app: str, port: int) -> str:
        service = f"{self._name}-{app}"
        k8s.core.v1.Service(
            f"{self._name}-{app}-service",
            metadata=self._meta(service, app),
            spec=work.service_spec(self._name, app, port),
            opts=self._child,
        )
        return service

    # --- deploy mode -----------------------------------------------------------------------
    def _deploy(
        self, rule_files: dict[str, dict], dashboard_maps: list[pulumi.Output[str]]
    ) -> dict[str, str | None]:
        alertmanager = self._alertmanager() if self._args.settings.alertmanager else None
        prometheus_url = self._prometheus(rule_files, alertmanager)
        grafana_url = (
            self._grafana(prometheus_url, dashboard_maps) if self._args.settings.grafana else None
        )
        return {
            "prometheus": prometheus_url,
            "grafana": grafana_url,
            "alertmanager": self._url(alertmanager, prom.ALERTMANAGER_PORT)
            if alertmanager
            else None,
        }

    def _prometheus(self, rule_files: dict[str, dict], alertmanager: str | None) -> str:
        args, name = self._args, self._name
        address = (
            f"{alertmanager}.{args.settings.namespace}.svc:{prom.ALERTMANAGER_PORT}"
            if alertmanager
            else None
        )
        config = prom.prometheus_config(
            args.settings,
            args.models,
            alertmanager_address=address,
            gateway_namespace=args.gateway_namespace,
        )

        account = k8s.core.v1.ServiceAccount(
            f"{name}-prometheus-sa",
            metadata=self._meta(f"{name}-prometheus", "prometheus"),
            opts=self._child,
        )
        # Cluster-scoped, so the namespace goes into the name to keep two stacks apart.
        role_name = f"{args.settings.namespace}-{name}-prometheus"
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-prometheus-role",
            metadata={"name": role_name, "labels": work.labels(name, "prometheus")},
            rules=work.prometheus_cluster_rules(),
            opts=self._child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-prometheus-binding",
            metadata={"name": role_name, "labels": work.labels(name, "prometheus")},
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role.metadata.apply(lambda meta: meta.name),
            },
            subjects=[
                {
                    "kind": "ServiceAccount",
                    "name": account.metadata.apply(lambda meta: meta.name),
                    "namespace": args.settings.namespace,
                }
            ],
            opts=self._child,
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-prometheus-config",
            metadata=self._meta(f"{name}-prometheus-config", "prometheus"),
            data={"prometheus.yml": _yaml(config)},
            opts=self._child,
        )
        rules_map = k8s.core.v1.ConfigMap(
            f"{name}-prometheus-rules",
            metadata=self._meta(f"{name}-prometheus-rules", "prometheus"),
            data={file: _yaml(groups) for file, groups in rule_files.items()},
            opts=self._child,
        )
        claim = None
        if args.settings.storage_size is not None:
            claim = f"{name}-prometheus-data"
            k8s.core.v1.PersistentVolumeClaim(
                f"{name}-prometheus-data",
                metadata=self._meta(claim, "prometheus"),
                spec={
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": args.settings.storage_size}},
                },
                opts=self._child,
            )
        k8s.apps.v1.Deployment(
            f"{name}-prometheus",
            metadata=self._meta(f"{name}-prometheus", "prometheus"),
            spec=work.prometheus_deployment(
                args.settings,
                name,
                config_map=config_map.metadata.apply(lambda meta: meta.name),
                rules_map=rules_map.metadata.apply(lambda meta: meta.name),
                service_account=account.metadata.apply(lambda meta: meta.name),
                claim=claim,
                config_hash=checksum(config, rule_files),
            ),
            opts=self._child,
        )
        self._service("prometheus", PROMETHEUS_PORT)
        # The one spelling of this URL: KEDA's Prometheus triggers are written with it too.
        return prometheus_url(self._name, self._args.settings.namespace)

    def _grafana(self, prometheus_url: str, dashboard_maps: list[pulumi.Output[str]]) -> str:
        args, name = self._args, self._name
        secret = None
        if args.grafana_admin_password is not None:
            secret = f"{name}-grafana-admin"
            k8s.core.v1.Secret(
                f"{name}-grafana-admin",
                metadata=self._meta(secret, "grafana"),
                string_data={"admin-password": pulumi.Output.secret(args.grafana_admin_password)},
                opts=self._child,
            )
        provisioning = {
            "datasources.yaml": _yaml(
                prom.grafana_datasources(prometheus_url, args.settings.scrape_interval)
            ),
            "dashboards.yaml": _yaml(prom.grafana_dashboard_provider()),
        }
        provisioning_map = k8s.core.v1.ConfigMap(
            f"{name}-grafana-provisioning",
            metadata=self._meta(f"{name}-grafana-provisioning", "grafana"),
            data=provisioning,
            opts=self._child,
        )
        k8s.apps.v1.Deployment(
            f"{name}-grafana",
            metadata=self._meta(f"{name}-grafana", "grafana"),
            spec=work.grafana_deployment(
                args.settings,
                name,
                provisioning_map=provisioning_map.metadata.apply(lambda meta: meta.name),
                dashboard_maps=dashboard_maps,
                admin_secret=secret,
                config_hash=checksum(provisioning),
            ),
            opts=self._child,
        )
        return self._url(self._service("grafana", prom.GRAFANA_PORT), prom.GRAFANA_PORT)

    def _alertmanager(self) -> str:
        args, name = self._args, self._name
        config = prom.alertmanager_config()
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-alertmanager-config",
            metadata=self._meta(f"{name}-alertmanager-config", "alertmanager"),
            data={"alertmanager.yml": _yaml(config)},
            opts=self._child,
        )
        k8s.apps.v1.Deployment(
            f"{name}-alertmanager",
            metadata=self._meta(f"{name}-alertmanager", "alertmanager"),
            spec=work.alertmanager_deployment(
                args.settings,
                name,
                config_map=config_map.metadata.apply(lambda meta: meta.name),
                config_hash=checksum(config),
            ),
            opts=self._child,
        )
        return self._service("alertmanager", prom.ALERTMANAGER_PORT)

    # --- operator mode ---------------------------------------------------------------------
    def _pod_monitor(self, resource: str, object_name: str, spec: dict) -> None:
        k8s.apiextensions.CustomResource(
            resource,
            api_version=MONITORING_API,
            kind="PodMonitor",
            metadata=self._meta(object_name, None, self._args.settings.operator_labels),
            spec=spec,
            opts=self._child,
        )

    def _operator_objects(self) -> None:
        args, name = self._args, self._name
        if args.gateway_namespace is not None:
            self._pod_monitor(
                f"{name}-gateway-podmonitor",
                f"{name}-gateway",
                prom.gateway_pod_monitor_spec(args.settings, args.gateway_namespace),
            )
        if not args.models:
            return
        self._pod_monitor(
            f"{name}-podmonitor",
            f"{name}-model-servers",
            prom.pod_monitor_spec(args.settings, args.models),
        )
        for model in args.models:
            key = f"{model.namespace}-{model.name}"
            k8s.apiextensions.CustomResource(
                f"{name}-rules-{key}",
                api_version=MONITORING_API,
                kind="PrometheusRule",
                metadata=self._meta(
                    _object_name(f"{name}-{key}"), None, args.settings.operator_labels
                ),
                spec=rules.rule_groups(model),
                opts=self._child,
            )
