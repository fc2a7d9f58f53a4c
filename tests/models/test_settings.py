"""Server settings from the environment, and start-up failures a real process reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.errors import ConfigError
from serving.settings import ServerSettings
from serving_harness import MODELS


def test_defaults_follow_the_contract():
    s = ServerSettings.from_env({})
    assert s.model_dir == Path("/model") and s.inference_backend == "onnx" and s.port == 8080
    assert s.max_batch_size == 1 and s.max_body_bytes == 4 * 1024 * 1024
    assert s.model_name is None and s.model_version is None
    assert s.grpc_port == 8081


def test_values_are_read_and_typed():
    s = ServerSettings.from_env(
        {
            "MODEL_NAME": "ml-model-1",
            "PORT": "9000",
            "MAX_BATCH_SIZE": "64",
            "ACCESS_LOG": "true",
            "DRAIN_SECONDS": "",
        }
    )
    assert (s.model_name, s.port, s.max_batch_size, s.access_log) == ("ml-model-1", 9000, 64, True)
    assert s.drain_seconds == 5.0  # empty means unset
    assert ServerSettings.from_env({"GRPC_PORT": "0"}).grpc_port == 0  # gRPC off


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        (
            {"PORT": "http"},
            ["PORT='http' is invalid", "allowed: an integer from 1 to 65535", "default (8080)"],
        ),
        ({"INFERENCE_BACKEND": "tensorrt"}, ["INFERENCE_BACKEND='tensorrt'", "'onnx' or 'native'"]),
        ({"MAX_BATCH_SIZE": "0"}, ["MAX_BATCH_SIZE='0'", "from 1 to 65536"]),
        ({"MODEL_NAME": "Bad Name"}, ["MODEL_NAME='Bad Name'", "a-z 0-9"]),
        ({"MAX_BODY_BYTES": "10"}, ["MAX_BODY_BYTES='10'", "1024"]),
        ({"GRPC_PORT": "-1"}, ["GRPC_PORT='-1'", "0 (off) to 65535", "default (8081)"]),
        ({"GRPC_PORT": "8080"}, ["GRPC_PORT='8080'", "equals PORT (8080)", "other than PORT"]),
        ({"PORT": "9000", "GRPC_PORT": "9000"}, ["GRPC_PORT='9000'", "equals PORT (9000)"]),
    ],
)
def test_invalid_variables_name_the_variable_value_allowed_and_fix(env, fragments):
    with pytest.raises(ConfigError) as err:
        ServerSettings.from_env(env)
    for fragment in fragments:
        assert fragment in str(err.value)
    assert "Fix: set" in str(err.value)


def test_settings_are_frozen_and_closed():
    s = ServerSettings.from_env({})
    with pytest.raises(ValidationError):
        s.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ServerSettings(unknown=1)  # type: ignore[call-arg]


def _start(env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(MODELS), "HOST": "127.0.0.1", **env}
    return subprocess.run(
        [sys.executable, "-m", "serving"],
        cwd=MODELS,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_server_refuses_to_start_with_a_bad_setting():
    proc = _start({"PORT": "-1"})
    assert proc.returncode == 2
    error = json.loads(proc.stderr.strip().splitlines()[-1])
    assert error["level"] == "error" and "PORT='-1' is invalid" in error["message"]


def test_server_refuses_to_start_without_a_model(tmp_path):
    proc = _start({"MODEL_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "model.json not found" in proc.stderr
