"""What every model's ``model_code.py`` shares: its command line, its name, its dataset shape.

A model's ``model_code.py`` keeps only what is its own (data, model, conversion) and ends in
``build(out_dir, <option>=<default>, ...)``, which trains, saves the native file and returns what
``serving.export.write_model_dir`` wrote (that call runs the quality gates). ``main`` here is the
command line the image build runs:

    python models/<folder>/model_code.py --out DIR [--<option> VALUE ...]

one ``--<option>`` per keyword parameter of ``build`` (``n_estimators`` -> ``--n-estimators``,
typed and defaulted like the parameter). It prints one summary line and exits 0, or prints the
failed gate and exits 1 (test metric below the model's threshold, or ONNX further than 1e-5 from
the native model), which fails the image build.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.export import QualityGateFailed
from serving.manifest import ModelManifest

_OPTION_TYPES = (int, float, str)


@dataclass(frozen=True)
class Dataset:
    """A seeded split: float32 rows, integer class indices, and the names the manifest records."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    classes: list[str]


def folder_name(model_code_file: str | Path) -> str:
    """The name of the folder holding ``model_code_file``: a copied folder names its model itself.

    The image build runs ``/src/$MODEL_SOURCE/model_code.py``, so in an image this is the
    ``MODEL_SOURCE`` build argument; from a checkout it is the folder under ``models/``.
    """
    return Path(model_code_file).resolve().parent.name


def summary(manifest: ModelManifest, out_dir: Path) -> str:
    """The line a successful build prints: both gates' measurements and where the model went."""
    q = manifest.quality
    return (
        f"{manifest.name}: test {q.metric} {q.value:.4f} (threshold {q.threshold}), "
        f"{q.test_rows} rows; ONNX parity max abs diff {q.parity_max_abs_diff:.2e} "
        f"(tolerance {q.parity_tolerance:.0e}); written to {out_dir}"
    )


def main(
    build: Callable[..., ModelManifest],
    argv: list[str] | None = None,
    *,
    name: str,
    description: str | None = None,
) -> int:
    """Parse ``--out DIR`` and build's options, run ``build``; 0 on success, 1 on a failed gate."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    options = _add_build_options(parser, build)
    args = parser.parse_args(argv)
    try:
        manifest = build(args.out, **{option: getattr(args, option) for option in options})
    except QualityGateFailed as exc:
        print(f"{name}: quality gate FAILED: {exc}", file=sys.stderr)
        return 1
    print(summary(manifest, args.out))
    return 0


def _add_build_options(parser: argparse.ArgumentParser, build: Callable[..., object]) -> list[str]:
    """One ``--option`` per parameter of ``build`` after the output directory; their names."""
    names = []
    for param in list(inspect.signature(build).parameters.values())[1:]:
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) or not any(
            type(param.default) is kind for kind in _OPTION_TYPES
        ):
            raise TypeError(
                f"{build.__qualname__}({param}): every parameter after the output directory "
                "becomes a command-line option, so it needs an int, float or str default"
            )
        parser.add_argument(
            "--" + param.name.replace("_", "-"),
            type=type(param.default),
            default=param.default,
            help=f"default {param.default}",
        )
        names.append(param.name)
    return names
