"""Batch inference: the model image run over a dataset file as a Job or CronJob."""

from __future__ import annotations

from typing import Any

from mlplatform.config import BatchJobConfig, ModelConfig
from mlplatform.core.names import BATCH_COMPONENT, LABEL_MODEL, PART_OF
from mlplatform.plan.gpu import GpuPlacement
from mlplatform.plan.pod import (
    container_resources,
    container_security_context,
    placement_fields,
    pod_security_context,
    server_env,
)


def batch_labels(job: BatchJobConfig, model: ModelConfig) -> dict[str, str]:
    # Not component=model-server: Prometheus must not treat batch pods as serving targets.
    return {
        "app.kubernetes.io/name": model.name,
        "app.kubernetes.io/instance": job.name,
        "app.kubernetes.io/version": model.version,
        "app.kubernetes.io/component": BATCH_COMPONENT,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        LABEL_MODEL: model.name,
    }


def batch_command(job: BatchJobConfig) -> list[str]:
    """The server image's batch entry point (contracts.md, "Batch mode")."""
    return ["python", "-m", "serving.batch", "--input", job.input, "--output", job.output]


def plan_batch_job(
    job: BatchJobConfig,
    model: ModelConfig,
    *,
    image: Any,
    service_account: str,
    placement: GpuPlacement | None,
) -> dict[str, Any]:
    """batch/v1 Job spec (also the jobTemplate of the CronJob)."""
    resources = job.resources or model.resources
    container = {
        "name": "batch",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": batch_command(job),
        "env": server_env(model, model.version),
        "resources": container_resources(resources),
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": job.data.mount_path},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "backoffLimit": job.backoff_limit,
        "activeDeadlineSeconds": job.active_deadline_seconds,
        "ttlSecondsAfterFinished": job.ttl_seconds_after_finished,
        "template": {
            "metadata": {"labels": batch_labels(job, model)},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": service_account,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(),
                "containers": [container],
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": job.data.claim_name}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                ],
                **placement_fields(placement if resources.gpus else None),
            },
        },
    }


def plan_cron_job(
    job: BatchJobConfig, job_spec: dict[str, Any], labels: dict[str, str]
) -> dict[str, Any]:
    """batch/v1 CronJob spec; runs never overlap, so a slow night cannot pile up jobs."""
    return {
        "schedule": job.schedule,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "startingDeadlineSeconds": 600,
        "jobTemplate": {"metadata": {"labels": dict(labels)}, "spec": job_spec},
    }
