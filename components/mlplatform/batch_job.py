"""BatchInference: run a model image over a dataset file, once (Job) or on a schedule (CronJob)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from mlplatform.config import BatchJobConfig, ModelConfig
from mlplatform.plan.batch import batch_labels, plan_batch_job, plan_cron_job
from mlplatform.plan.gpu import GpuPlacement

# Pulumi would otherwise block `up` until the Job finishes (hours, for a real dataset) and until
# the claim binds (never, with WaitForFirstConsumer storage and no pod yet).
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


class BatchInferenceArgs(BaseModel):
    """Arguments of BatchInference."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    job: BatchJobConfig = Field(description="The job's config entry. Required.")
    model: ModelConfig = Field(description="The model the job runs (job.model). Required.")
    namespace: Any = Field(description="pulumi.Input[str] namespace. Required.")
    image: Any = Field(description="pulumi.Input[str] model image (ModelImage.ref). Required.")
    placement: GpuPlacement | None = Field(
        default=None,
        description="GPU placement when the job's resources request GPUs. Default none.",
    )


class BatchInference(pulumi.ComponentResource):
    """ServiceAccount, optional data claim, and a Job or CronJob running `serving.batch`."""

    kind: pulumi.Output[str]
    """'Job' or 'CronJob'."""
    job_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: BatchInferenceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlplatform:k8s:BatchInference", name, None, opts)
        job, model = args.job, args.model
        if job.model != model.name:
            raise ValueError(f"batch job {job.name!r} runs model {job.model!r}, not {model.name!r}")
        labels = batch_labels(job, model)
        child = pulumi.ResourceOptions(parent=self)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={"name": job.name, "namespace": args.namespace, "labels": labels},
            automount_service_account_token=False,
            opts=child,
        )
        depends: list[pulumi.Resource] = []
        if job.data.create:
            claim_spec: dict[str, Any] = {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": job.data.size}},
            }
            if job.data.storage_class_name:
                claim_spec["storageClassName"] = job.data.storage_class_name
            depends.append(
                k8s.core.v1.PersistentVolumeClaim(
                    f"{name}-data",
                    metadata={
                        "name": job.data.claim_name,
                        "namespace": args.namespace,
                        "labels": labels,
                        "annotations": SKIP_AWAIT,
                    },
                    spec=claim_spec,
                    opts=child,
                )
            )
        spec = plan_batch_job(
            job,
            model,
            image=args.image,
            service_account=account.metadata.name,
            placement=args.placement,
        )
        metadata = {"name": job.name, "namespace": args.namespace, "labels": labels}
        if job.schedule is None:
            # Jobs are immutable: a new image or dataset means a new run. The run gets a fresh
            # auto-generated name (`<job>-<suffix>`), so the replacement is created before the old
            # run is deleted; with a fixed name, a delete that is still draining (we do not await
            # runs, so not their deletion either) makes the create collide with it.
            created: Any = k8s.batch.v1.Job(
                f"{name}-job",
                metadata={"namespace": args.namespace, "labels": labels, "annotations": SKIP_AWAIT},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
            )
            self.kind = pulumi.Output.from_input("Job")
        else:
            created = k8s.batch.v1.CronJob(
                f"{name}-cronjob",
                metadata=metadata,
                spec=plan_cron_job(job, spec, labels),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
            )
            self.kind = pulumi.Output.from_input("CronJob")
        self.job_name = created.metadata.name
        self.register_outputs({"kind": self.kind, "jobName": self.job_name})
