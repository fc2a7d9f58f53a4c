"""Batch mode: score a file of rows with the same model and code paths as the server.

    python -m serving.batch --input rows.csv --output predictions.jsonl [--model-dir /model]

Input, by extension:
  .csv    numbers, one row per line; an optional header row naming the model's features (any
          order: columns are matched by name)
  .jsonl  one JSON array of numbers per line
  .json   a /predict body: {"instances": [[...], ...]}
  .npy    a 2-D numeric array
Output, by extension:
  .jsonl  {"row": i, "prediction": k, "class": "<name>", "probabilities": [...]} per line
  .csv    row,prediction,class,p_<class>... with a header
  .json   a /predict response: {"predictions": [...], "probabilities": [...]}
Rows are read, validated and scored in chunks, so memory stays bounded for .csv/.jsonl. The output
appears only when every row was scored (written to a temporary file, then renamed). Exit status:
0 done, 2 bad input or settings (the message names file, line and column).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

from serving.backends import Backend, load_backend
from serving.errors import ConfigError, InvalidInput
from serving.jsonlog import configure
from serving.manifest import ModelManifest, load_manifest
from serving.protocol.rest import non_finite_rows, parse_predict, to_matrix

log = logging.getLogger("serving.batch")
INPUT_FORMATS = (".csv", ".jsonl", ".json", ".npy")
OUTPUT_FORMATS = (".jsonl", ".csv", ".json")


def _lines(path: Path, chunk_rows: int) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) chunks of a text file, blank lines dropped."""
    with path.open("r", newline="") as f:
        chunk: list[str] = []
        first = 1
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if not chunk:
                first = number
            chunk.append(line)
            if len(chunk) >= chunk_rows:
                yield first, chunk
                chunk = []
        if chunk:
            yield first, chunk


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path: Path, manifest: ModelManifest, chunk_rows: int) -> Iterator[np.ndarray]:
    features = manifest.input.features
    order: list[int] | None = None
    named = ""
    for first, lines in _lines(path, chunk_rows):
        rows = list(csv.reader(lines))
        if order is None:
            order = list(range(features))
            if first == 1 and not all(_is_number(cell) for cell in rows[0]):
                order = _header_order(path, rows[0], manifest)
                named = ", as named in the header"
                rows = rows[1:]
                first += 1
        out = np.empty((len(rows), features), dtype=np.float64)
        for i, row in enumerate(rows):
            line = first + i
            if len(row) != len(order):
                raise InvalidInput(
                    f"{path}: line {line} has {len(row)} columns; expected {len(order)} "
                    f"({features} features{named})"
                )
            for k, j in enumerate(order):
                try:
                    out[i, k] = float(row[j])
                except ValueError:
                    raise InvalidInput(
                        f"{path}: line {line}, column {j + 1} is {row[j]!r}; expected a number"
                    ) from None
        bad = _bad_row(out)
        if bad is not None:
            raise InvalidInput(f"{path}: line {first + bad}: {_BAD_VALUE}")
        yield out.astype(np.float32)


_F32_MAX = float(np.finfo(np.float32).max)
_BAD_VALUE = "holds NaN, infinity or a value beyond the float32 range the model takes"


def _bad_row(chunk: np.ndarray) -> int | None:
    """Index of the first row holding NaN, infinity or a value beyond float32, else None."""
    ok = np.abs(chunk) <= _F32_MAX  # False for NaN too
    if ok.all():
        return None
    return int(np.flatnonzero(~ok.all(axis=1))[0])


def _header_order(path: Path, header: list[str], manifest: ModelManifest) -> list[int]:
    names = [h.strip() for h in header]
    expected = manifest.input.feature_names
    missing = [n for n in expected if n not in names]
    unknown = [n for n in names if n not in expected]
    if missing or unknown or len(names) != len(set(names)):
        raise InvalidInput(
            f"{path}: the header must name each of the model's {len(expected)} features once "
            f"(any order); missing: {missing[:5]}, unknown: {unknown[:5]}. Expected names: "
            f"{', '.join(expected[:8])}{' ...' if len(expected) > 8 else ''} (or drop the header "
            "and give the columns in the model's order)"
        )
    return [names.index(n) for n in expected]


def read_jsonl(path: Path, manifest: ModelManifest, chunk_rows: int) -> Iterator[np.ndarray]:
    features = manifest.input.features
    for first, lines in _lines(path, chunk_rows):
        rows = []
        for i, line in enumerate(lines):
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"{path}: line {first + i} is not valid JSON ({exc})") from None
        try:
            yield to_matrix(rows, features, "rows")
        except InvalidInput as exc:
            raise InvalidInput(
                f"{path}: lines {first}..{first + len(lines) - 1}: {exc.message}"
            ) from None


def read_json(path: Path, manifest: ModelManifest) -> Iterator[np.ndarray]:
    try:
        yield parse_predict(path.read_bytes(), manifest.input.features)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.message}") from None


def read_npy(path: Path, manifest: ModelManifest, chunk_rows: int) -> Iterator[np.ndarray]:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InvalidInput(f"{path}: not a plain numeric .npy array ({exc})") from None
    features = manifest.input.features
    if arr.ndim != 2 or arr.shape[1] != features or arr.dtype.kind not in "iuf":
        raise InvalidInput(
            f"{path}: array is {arr.dtype} {list(arr.shape)}; expected a numeric 2-D array "
            f"[rows, {features}]"
        )
    for start in range(0, arr.shape[0], chunk_rows):
        chunk = np.asarray(arr[start : start + chunk_rows], dtype=np.float64)
        bad = _bad_row(chunk)
        if bad is not None:
            raise InvalidInput(f"{path}: row {start + bad} {_BAD_VALUE}")
        yield np.ascontiguousarray(chunk, dtype=np.float32)


class Writer:
    """Writes predictions in the output file's format."""

    def __init__(self, f: io.BufferedWriter, fmt: str, classes: list[str]) -> None:
        self.f, self.fmt, self.classes = f, fmt, classes
        self.row = 0
        self._json_predictions: list[np.ndarray] = []
        self._json_probabilities: list[np.ndarray] = []
        if fmt == ".csv":
            header = ["row", "prediction", "class"] + [f"p_{c}" for c in classes]
            f.write((",".join(header) + "\n").encode())

    def write(self, probabilities: np.ndarray) -> None:
        labels = probabilities.argmax(axis=1)
        if self.fmt == ".jsonl":
            for label, p in zip(labels.tolist(), probabilities, strict=True):
                line = {
                    "row": self.row,
                    "prediction": label,
                    "class": self.classes[label],
                    "probabilities": p,
                }
                self.f.write(
                    orjson.dumps(
                        line, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
                    )
                )
                self.row += 1
        elif self.fmt == ".csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            for label, p in zip(labels.tolist(), probabilities.tolist(), strict=True):
                w.writerow([self.row, label, self.classes[label], *(f"{v:.7g}" for v in p)])
                self.row += 1
            self.f.write(buf.getvalue().encode())
        else:
            self._json_predictions.append(labels)
            self._json_probabilities.append(probabilities)
            self.row += len(labels)

    def close(self) -> None:
        if self.fmt == ".json":
            doc = {
                "predictions": np.concatenate(self._json_predictions)
                if self._json_predictions
                else [],
                "probabilities": np.concatenate(self._json_probabilities)
                if self._json_probabilities
                else [],
            }
            self.f.write(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


def score_file(
    input_path: Path,
    output_path: Path,
    manifest: ModelManifest,
    backend: Backend,
    chunk_rows: int = 4096,
) -> int:
    """Score every row of ``input_path`` into ``output_path``; return the number of rows."""
    in_fmt = input_path.suffix.lower()
    out_fmt = output_path.suffix.lower()
    if in_fmt not in INPUT_FORMATS:
        raise InvalidInput(
            f"--input {input_path}: unsupported extension {in_fmt!r}; "
            f"use one of {', '.join(INPUT_FORMATS)}"
        )
    if out_fmt not in OUTPUT_FORMATS:
        raise InvalidInput(
            f"--output {output_path}: unsupported extension {out_fmt!r}; "
            f"use one of {', '.join(OUTPUT_FORMATS)}"
        )
    if not input_path.is_file():
        raise InvalidInput(f"--input {input_path}: no such file")
    if in_fmt == ".csv":
        chunks = read_csv(input_path, manifest, chunk_rows)
    elif in_fmt == ".jsonl":
        chunks = read_jsonl(input_path, manifest, chunk_rows)
    elif in_fmt == ".json":
        chunks = read_json(input_path, manifest)
    else:
        chunks = read_npy(input_path, manifest, chunk_rows)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(output_path.name + ".partial")
    try:
        with tmp.open("wb") as f:
            writer = Writer(f, out_fmt, manifest.classes)
            for x in chunks:
                probabilities = backend.predict_proba(x)
                bad = non_finite_rows(probabilities)
                if bad:
                    raise InvalidInput(
                        f"{input_path}: the model produced NaN/infinity for data row(s) "
                        f"{[writer.row + b for b in bad[:10]]}: values far off the training scale"
                    )
                writer.write(probabilities)
            writer.close()
        os.replace(tmp, output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return writer.row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "/model"))
    )
    parser.add_argument(
        "--backend", choices=["onnx", "native"], default=os.environ.get("INFERENCE_BACKEND", "onnx")
    )
    parser.add_argument("--chunk-rows", type=int, default=4096, help="rows scored per model call")
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("ONNX_THREADS", "0")),
        help="ONNX Runtime threads (0: one per core)",
    )
    args = parser.parse_args(argv)
    configure(os.environ.get("LOG_LEVEL", "info"))
    if args.chunk_rows < 1:
        log.error(f"--chunk-rows={args.chunk_rows} is invalid; give an integer >= 1")
        return 2
    started = time.monotonic()
    try:
        manifest = load_manifest(args.model_dir)
        backend = load_backend(manifest, args.model_dir, args.backend, args.threads)
        rows = score_file(args.input, args.output, manifest, backend, args.chunk_rows)
    except (ConfigError, InvalidInput) as exc:
        log.error(str(exc), extra={"event": "batch_failed", "input": str(args.input)})
        return 2
    seconds = time.monotonic() - started
    log.info(
        "batch scored",
        extra={
            "event": "batch_done",
            "model": manifest.name,
            "rows": rows,
            "input": str(args.input),
            "output": str(args.output),
            "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds) if seconds > 0 else None,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
