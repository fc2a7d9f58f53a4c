#!/bin/sh
# Trims a serving venv for the runtime image (run in the image build's deps stage): removes test
# suites, type stubs and the parts of onnxruntime/numpy that inference never imports. The runtime
# stage's `python -m serving.selfcheck` proves the trimmed environment still serves the model.
set -eu
VENV="$1"
SP="$VENV/lib/python3.11/site-packages"
before=$(du -sm "$VENV" | cut -f1)
# onnxruntime: conversion/quantization tooling and the C-API library (the Python binding links its
# own copy of the runtime; libonnxruntime.so is for C/C++ callers).
rm -rf "$SP/onnxruntime/transformers" "$SP/onnxruntime/quantization" "$SP/onnxruntime/tools" \
       "$SP/onnxruntime/datasets" "$SP"/onnxruntime/capi/libonnxruntime.so*
# numpy: Fortran wrapper generator, the old distutils and the PyInstaller hooks.
rm -rf "$SP/numpy/f2py" "$SP/numpy/distutils" "$SP/numpy/_pyinstaller"
find "$SP" -depth -type d -name tests -exec rm -rf {} +
find "$SP" -name '*.pyi' -delete
echo "slim-venv: $VENV ${before} MB -> $(du -sm "$VENV" | cut -f1) MB"
