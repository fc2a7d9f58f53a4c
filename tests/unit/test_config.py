"""The typed stack config: the real stack files, defaults, inheritance, every key documented."""

from __future__ import annotations

import typing

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from mlplatform.config import (
    AutoscalingConfig,
    AutoscalingOverrides,
    ModelConfig,
    SignalsConfig,
    StackConfig,
    top_level_keys,
)
from mlplatform.config.issues import _unwrap
from mlplatform.docs import render
from mlplatform.loader import decode_config_value, load_stack_file, parse_stack_config


def all_config_models(root: type[BaseModel] = StackConfig) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()

    def visit(annotation) -> None:
        inner = _unwrap(annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            if inner not in found:
                found.add(inner)
                for field in inner.model_fields.values():
                    visit(field.annotation)
        for arg in typing.get_args(inner):
            visit(arg)

    visit(root)
    return found


def test_dev_stack_file_is_valid(repo_root):
    config = load_stack_file(repo_root / "Pulumi.dev.yaml")
    assert {p.backend for p in config.gpu_pools} == {"local"}, "dev simulates its GPU pool"
    assert all(config.effective_autoscaling(m).max_replicas <= 4 for m in config.models), (
        "dev stays small"
    )
    # The local cluster's registry (scripts/cluster-layout.sh: slot 1 -> port 5001): pods pull
    # what `pulumi up` pushed, by digest, as they would from a cloud registry.
    assert config.registry.server == "localhost:5001", "dev pushes to the local cluster's registry"
    assert not any(m.resources.gpus for m in config.models), (
        "dev's GPU pool is simulated: models serve on CPU"
    )


def test_prod_stack_file_is_ha(repo_root):
    config = load_stack_file(repo_root / "Pulumi.prod.yaml")
    for model in config.models:
        assert config.effective_autoscaling(model).min_replicas >= 3, model.name
    assert config.ingress.tls.enabled
    assert any(m.resources.gpus for m in config.models)
    assert config.registry.server is not None
    dev = load_stack_file(repo_root / "Pulumi.dev.yaml")
    for prod_model, dev_model in zip(config.models, dev.models, strict=True):
        assert prod_model.resources.limits.memory != dev_model.resources.limits.memory


def test_every_field_documents_default_and_allowed_values():
    undocumented = [
        f"{model.__name__}.{name}"
        for model in all_config_models()
        for name, field in model.model_fields.items()
        if not (
            field.description
            and "Default:" in field.description
            and "Allowed:" in field.description
        )
    ]
    assert undocumented == []


def test_pulumi_yaml_declares_exactly_the_program_keys(repo_root):
    project = yaml.safe_load((repo_root / "Pulumi.yaml").read_text())
    assert project["name"] == "mlplatform"
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    assert set(project["config"]) == set(top_level_keys())
    # A declared key without a default is mandatory for every stack: only `models` is.
    required = {k for k, v in project["config"].items() if "default" not in v}
    assert required == {"models"}
    assert StackConfig.model_fields["models"].is_required()


def test_declared_defaults_validate_as_library_defaults(repo_root):
    project = yaml.safe_load((repo_root / "Pulumi.yaml").read_text())
    raw = {k: v["default"] for k, v in project["config"].items() if "default" in v}
    config = parse_stack_config({**raw, "models": []}, "defaults")
    assert config == StackConfig(models=[])


def test_configuration_reference_in_docs_is_current(repo_root):
    text = (repo_root / "docs" / "components.md").read_text()
    assert render() in text, "regenerate with: make docs"


def test_reference_lists_every_key():
    reference = render()
    for model in all_config_models():
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert f".{key}` |" in reference or f"`mlplatform:{key}`" in reference, (
                f"{model.__name__}.{key}"
            )


def test_model_overrides_inherit_unless_set():
    defaults = AutoscalingConfig(min_replicas=2, max_replicas=6, signals=SignalsConfig(cpu=60))
    merged = defaults.merged(AutoscalingOverrides.model_validate({"maxReplicas": 9}))
    assert (merged.min_replicas, merged.max_replicas, merged.signals.cpu) == (2, 9, 60)


def test_a_models_signals_replace_the_whole_default_set():
    defaults = AutoscalingConfig(signals=SignalsConfig(cpu=60, memory=80))
    merged = defaults.merged(AutoscalingOverrides.model_validate({"signals": {"inFlight": 4}}))
    assert merged.signals.targets() == {"in_flight": 4}
    assert defaults.merged(AutoscalingOverrides()).signals.targets() == {"cpu": 60, "memory": 80}


def test_default_autoscaling_is_cpu_only():
    assert AutoscalingConfig().signals.targets() == {"cpu": 70}


def test_camel_case_in_yaml_snake_case_in_python():
    model = ModelConfig.model_validate(
        {"name": "iris", "framework": "sklearn", "gpuPool": "t4", "resources": {"gpus": 1}}
    )
    assert model.gpu_pool == "t4"
    assert ModelConfig(name="iris", framework="sklearn", gpu_pool="t4").gpu_pool == "t4"


def test_config_is_frozen():
    model = ModelConfig(name="iris", framework="sklearn")
    with pytest.raises(ValidationError):
        model.version = "v9"


def test_source_defaults_to_name_with_underscores():
    assert ModelConfig(name="ml-model-1", framework="sklearn").source_dir == "ml_model_1"
    assert ModelConfig(name="iris", framework="sklearn", source="shared").source_dir == "shared"


def test_runtime_values_are_decoded_like_the_engine_sends_them():
    assert decode_config_value('[{"name": "iris"}]') == [{"name": "iris"}]
    assert decode_config_value("/home/me/.kube/config") == "/home/me/.kube/config"
    assert decode_config_value("[not json") == "[not json"


def test_empty_kubeconfig_means_unset():
    config = parse_stack_config({"models": [], "kubeconfig": "", "kubeContext": ""}, "dev")
    assert config.kubeconfig is None and config.kube_context is None


def test_existing_pool_capacity_counts_named_nodes():
    config = parse_stack_config(
        {
            "models": [],
            "gpuPools": [
                {
                    "name": "a100",
                    "backend": "existing",
                    "gpusPerNode": 8,
                    "existing": {"nodeNames": ["gpu-1", "gpu-2"]},
                }
            ],
        },
        "prod",
    )
    assert config.gpu_pools[0].gpu_capacity == 16
