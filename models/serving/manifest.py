"""The model manifest (``model.json``): the contract between a model's training code and the server.

Training writes it next to the artifacts; the server reads nothing else to learn the model's name,
input width, classes and files. It also records the build's quality gates (test metric and ONNX
parity) and a few sample rows with their expected outputs, which the runtime image's build-time
self-check and the tests replay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serving.errors import ModelLoadError

MANIFEST_FILE = "model.json"

_STRICT = ConfigDict(extra="forbid", frozen=True)


class InputSpec(BaseModel):
    """The one input tensor: a float32 matrix of shape [rows, features]."""

    model_config = _STRICT

    name: str = Field(
        "input-0",
        description="Public tensor name shown in OIP metadata. Default 'input-0'.",
    )
    onnx_name: str = Field(description="Input name inside the ONNX graph (required).")
    features: int = Field(ge=1, le=100_000, description="Columns per row (required), 1-100000.")
    feature_names: list[str] = Field(
        description="One name per column, in order (required; length equals `features`)."
    )

    @model_validator(mode="after")
    def _names_match_width(self) -> InputSpec:
        if len(self.feature_names) != self.features:
            raise ValueError(
                f"input.feature_names has {len(self.feature_names)} names but input.features is "
                f"{self.features}; give exactly one name per column"
            )
        return self


class OnnxSpec(BaseModel):
    """The ONNX artifact."""

    model_config = _STRICT

    file: str = Field(
        "model.onnx", description="File name in the model directory. Default 'model.onnx'."
    )
    probabilities_output: str = Field(
        description="Graph output holding class probabilities, float32 [rows, classes] (required)."
    )


class NativeSpec(BaseModel):
    """The framework's own artifact, used when INFERENCE_BACKEND=native."""

    model_config = _STRICT

    framework: Literal["sklearn", "keras"] = Field(
        description="'sklearn' (joblib file, predict_proba) or 'keras' (.keras file)."
    )
    file: str = Field(description="File name in the model directory (required).")


class QualityReport(BaseModel):
    """The build's quality gates, as measured when the model was trained."""

    model_config = _STRICT

    metric: str = Field(description="Name of the held-out test metric, e.g. 'accuracy'.")
    value: float = Field(description="Its measured value on the held-out set.")
    threshold: float = Field(description="The minimum the build accepted.")
    test_rows: int = Field(ge=1, description="Rows in the held-out set.")
    parity_max_abs_diff: float = Field(
        ge=0, description="Largest |native - ONNX| probability difference on the held-out set."
    )
    parity_tolerance: float = Field(gt=0, description="The largest difference the build accepted.")


class Sample(BaseModel):
    """Held-out rows with the native model's probabilities, replayed by self-checks."""

    model_config = _STRICT

    inputs: list[list[float]] = Field(min_length=1, description="Rows, each `features` wide.")
    probabilities: list[list[float]] = Field(
        min_length=1, description="Native probabilities per row, each `len(classes)` wide."
    )


class ModelManifest(BaseModel):
    """Contents of ``model.json``."""

    model_config = _STRICT

    name: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$",
        description="Model name (required): 1-63 chars of a-z 0-9 _ . - .",
    )
    version: str = Field(min_length=1, max_length=64, description="Model version (required).")
    task: Literal["classification"] = Field(
        "classification", description="Only 'classification' (probabilities + label) so far."
    )
    input: InputSpec
    classes: list[str] = Field(min_length=2, description="Class names; output column order.")
    onnx: OnnxSpec
    native: NativeSpec
    quality: QualityReport
    sample: Sample
    trained_with: dict[str, str] = Field(
        default_factory=dict, description="Package versions used for training (informational)."
    )

    @model_validator(mode="after")
    def _sample_widths(self) -> ModelManifest:
        for i, row in enumerate(self.sample.inputs):
            if len(row) != self.input.features:
                raise ValueError(
                    f"sample.inputs[{i}] has {len(row)} values, expected {self.input.features}"
                )
        for i, row in enumerate(self.sample.probabilities):
            if len(row) != len(self.classes):
                raise ValueError(
                    f"sample.probabilities[{i}] has {len(row)} values, expected {len(self.classes)}"
                )
        if len(self.sample.inputs) != len(self.sample.probabilities):
            raise ValueError(
                "sample.inputs and sample.probabilities must have the same number of rows"
            )
        return self


def load_manifest(model_dir: Path) -> ModelManifest:
    """Read and validate ``<model_dir>/model.json``; raise ModelLoadError naming what is wrong."""
    path = Path(model_dir) / MANIFEST_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(
            f"model manifest {path} not found: MODEL_DIR={str(model_dir)!r} must be a directory "
            "written by a model's training code (models/<name>/model_code.py), holding "
            f"{MANIFEST_FILE}"
        ) from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read model manifest {path}: {exc}") from None
    try:
        return ModelManifest.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise ModelLoadError(
            f"model manifest {path} is invalid ({problems}); re-run the model's training "
            "(python models/<name>/model_code.py --out DIR) to regenerate it"
        ) from None


def save_manifest(manifest: ModelManifest, model_dir: Path) -> Path:
    """Write ``model.json`` into ``model_dir`` and return its path."""
    path = Path(model_dir) / MANIFEST_FILE
    path.write_text(manifest.model_dump_json(indent=2) + "\n")
    return path
