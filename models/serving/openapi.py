"""The OpenAPI 3.0 document the server serves at /openapi.json, built from the model manifest.

Schemas are as tight as OpenAPI can state them (row width, value ranges, closed objects), so a
fuzzer generating "invalid" requests from it finds exactly the requests the server must refuse.
What OpenAPI cannot state (shape[1] equal to the width, data length equal to rows x width) the
server checks and answers with 400, which each operation documents.
"""

from __future__ import annotations

from typing import Any

from serving.manifest import ModelManifest
from serving.protocol.rest import DATATYPE_RANGES, F32_MAX, OUTPUT_NAMES

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def build_openapi(
    manifest: ModelManifest, model_name: str, model_version: str, max_body: int
) -> dict[str, Any]:
    """The OpenAPI document of a server serving ``manifest`` as model_name/model_version."""
    features = manifest.input.features
    classes = len(manifest.classes)
    number = {"type": "number", "minimum": -F32_MAX, "maximum": F32_MAX}
    row = {"type": "array", "items": number, "minItems": features, "maxItems": features}
    name_param = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [model_name]},
    }
    version_param = {
        "name": "model_version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [model_version]},
    }
    bad = _error("Invalid request: the message names the field, the value and what is expected.")
    too_large = _error(f"Body larger than MAX_BODY_BYTES ({max_body} bytes).")
    non_finite = _error("The model produced NaN/infinity for these inputs (values far off scale).")
    not_found = _error("No such model or version on this server.")

    def infer_op(params: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "post": {
                "summary": "Open Inference Protocol v2 inference",
                "description": (
                    "JSON as described here, or the protocol's binary tensor extension: with the "
                    "header Inference-Header-Content-Length: N the body's first N bytes are this "
                    "JSON and each input with parameters.binary_data_size has its raw "
                    "little-endian bytes after it, in input order. Outputs with "
                    "parameters.binary_data (or all, with the request's "
                    "parameters.binary_data_output) come back raw the same way, in an "
                    "application/octet-stream response carrying that header."
                ),
                "parameters": params,
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": _ref("InferRequest")}},
                },
                "responses": {
                    "200": _json(_ref("InferResponse"), "Labels and class probabilities."),
                    "400": bad,
                    "404": not_found,
                    "413": too_large,
                    "422": non_finite,
                },
            }
        }

    def metadata_op(params: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "get": {
                "summary": "Model metadata",
                "parameters": params,
                "responses": {
                    "200": _json(_ref("ModelMetadata"), "Model metadata."),
                    "404": not_found,
                },
            }
        }

    def ready_op(params: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "get": {
                "summary": "Model readiness",
                "parameters": params,
                "responses": {
                    "200": _json(_ref("ModelReady"), "Model ready."),
                    "503": _json(_ref("ModelReady"), "Not ready (shutting down)."),
                    "404": not_found,
                },
            }
        }

    paths: dict[str, Any] = {
        "/v2/health/live": {
            "get": {
                "summary": "Liveness",
                "responses": {"200": _json(_ref("Live"), "The process serves HTTP.")},
            }
        },
        "/v2/health/ready": {
            "get": {
                "summary": "Readiness: model loaded and not shutting down",
                "responses": {
                    "200": _json(_ref("Ready"), "Ready."),
                    "503": _json(_ref("Ready"), "Not ready (shutting down)."),
                },
            }
        },
        "/v2": {
            "get": {
                "summary": "Server metadata",
                "responses": {"200": _json(_ref("ServerMetadata"), "Server metadata.")},
            }
        },
        "/v2/models/{model_name}": metadata_op([name_param]),
        "/v2/models/{model_name}/versions/{model_version}": metadata_op(
            [name_param, version_param]
        ),
        "/v2/models/{model_name}/ready": ready_op([name_param]),
        "/v2/models/{model_name}/versions/{model_version}/ready": ready_op(
            [name_param, version_param]
        ),
        "/v2/models/{model_name}/infer": infer_op([name_param]),
        "/v2/models/{model_name}/versions/{model_version}/infer": infer_op(
            [name_param, version_param]
        ),
        "/predict": {
            "post": {
                "summary": "Plain JSON prediction",
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": _ref("PredictRequest")}},
                },
                "responses": {
                    "200": _json(
                        _ref("PredictResponse"), "One label and one probability row per instance."
                    ),
                    "400": bad,
                    "413": too_large,
                    "422": non_finite,
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0 document.")},
            }
        },
    }

    tensor_meta = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "parameters": {"type": "object"},
        },
    }
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Live": {
            "type": "object",
            "required": ["live"],
            "properties": {"live": {"type": "boolean"}},
        },
        "Ready": {
            "type": "object",
            "required": ["ready"],
            "properties": {"ready": {"type": "boolean"}},
        },
        "ModelReady": {
            "type": "object",
            "required": ["name", "ready"],
            "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
        },
        "ServerMetadata": {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": tensor_meta},
                "outputs": {"type": "array", "items": tensor_meta},
                "parameters": {"type": "object"},
            },
        },
        "PredictRequest": {
            "type": "object",
            "required": ["instances"],
            "additionalProperties": False,
            "properties": {
                "instances": {
                    "type": "array",
                    "minItems": 1,
                    "items": row,
                    "description": f"Rows of {features} feature values each.",
                }
            },
            "example": {"instances": manifest.sample.inputs[:1]},
        },
        "PredictResponse": {
            "type": "object",
            "required": ["predictions", "probabilities"],
            "properties": {
                "predictions": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0, "maximum": classes - 1},
                    "description": "Class index per row (names: metadata `parameters.classes`).",
                },
                "probabilities": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "items": {"type": "number"},
                        "minItems": classes,
                        "maxItems": classes,
                    },
                },
            },
        },
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "model_name": {
                    "type": "string",
                    "enum": [model_name],
                    "description": "Optional; must name the model in the URL.",
                },
                "parameters": {"type": "object"},
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": _ref("RequestInput"),
                },
                "outputs": {"type": "array", "items": _ref("RequestOutput")},
            },
            "example": {
                "inputs": [
                    {
                        "name": manifest.input.name,
                        "shape": [1, features],
                        "datatype": "FP32",
                        "data": manifest.sample.inputs[0],
                    }
                ]
            },
        },
        "RequestInput": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "shape": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 2,
                    "items": {"type": "integer", "minimum": 1},
                    "description": f"[rows, {features}]",
                },
                "datatype": {"type": "string", "enum": list(DATATYPE_RANGES)},
                "parameters": {"type": "object"},
                "data": {
                    "type": "array",
                    "items": {"anyOf": [number, {"type": "array"}]},
                    "description": "rows x features numbers, flat (row-major) or nested.",
                },
            },
        },
        "RequestOutput": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "enum": list(OUTPUT_NAMES)},
                "parameters": {"type": "object"},
            },
        },
        "InferResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "datatype", "shape", "data"],
                        "properties": {
                            "name": {"type": "string", "enum": list(OUTPUT_NAMES)},
                            "datatype": {"type": "string", "enum": ["INT64", "FP32"]},
                            "shape": {"type": "array", "items": {"type": "integer"}},
                            "data": {"type": "array", "items": {"type": "number"}},
                        },
                    },
                },
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{model_name} model server",
            "version": model_version,
            "description": (
                f"Serves model '{model_name}' version '{model_version}' ({features} float32 "
                f"features, {classes} classes: {', '.join(manifest.classes)}) over the Open "
                "Inference Protocol "
                "v2 REST API (with the binary tensor extension) and a plain JSON /predict; the "
                "protocol's gRPC service listens on GRPC_PORT."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
