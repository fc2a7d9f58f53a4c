"""Replays the manifest's sample rows through a backend and compares with the recorded outputs.

Run at the end of every image build (`python -m serving.selfcheck`): it proves that the runtime
stage, with its trimmed environment, loads the model and computes what training measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from serving.backends import load_backend
from serving.errors import ConfigError
from serving.manifest import load_manifest


class SelfCheckFailed(Exception):
    """The backend's outputs differ from the manifest's recorded sample outputs."""


def selfcheck(model_dir: Path, backend: str = "onnx") -> float:
    """Max |recorded - computed| over the sample; SelfCheckFailed above the parity tolerance."""
    manifest = load_manifest(model_dir)
    model = load_backend(manifest, model_dir, backend)
    x = np.asarray(manifest.sample.inputs, dtype=np.float32)
    expected = np.asarray(manifest.sample.probabilities, dtype=np.float32)
    got = model.predict_proba(x)
    if got.shape != expected.shape:
        raise SelfCheckFailed(
            f"{backend} backend returned shape {got.shape}, expected {expected.shape}"
        )
    diff = float(np.abs(got - expected).max())
    tolerance = manifest.quality.parity_tolerance
    if not diff <= tolerance:
        raise SelfCheckFailed(
            f"{backend} backend differs from the recorded sample outputs by {diff:.3g} "
            f"(> parity tolerance {tolerance:.3g}) for model '{manifest.name}' in {model_dir}"
        )
    return diff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.selfcheck", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("/model"))
    parser.add_argument("--backend", choices=["onnx", "native"], default="onnx")
    args = parser.parse_args(argv)
    try:
        diff = selfcheck(args.model_dir, args.backend)
    except (ConfigError, SelfCheckFailed) as exc:
        print(f"selfcheck FAILED: {exc}", file=sys.stderr)
        return 1
    print(
        f"selfcheck ok: {args.backend} backend matches the recorded sample "
        f"(max abs diff {diff:.3g})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
