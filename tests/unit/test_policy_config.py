"""Rule options: validation errors name rule, key path, value, allowed values and the fix."""

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))

from mlpolicy import examples as ex  # noqa: E402
from mlpolicy.config import (  # noqa: E402
    GpuPoolsConfig,
    PdbConfig,
    PolicyConfigError,
    ProbesConfig,
    SecretEnvConfig,
    json_schema_properties,
    parse_config,
)
from mlpolicy.registry import RULES  # noqa: E402


def test_negative_pool_size_error_names_everything_needed_to_fix_it():
    with pytest.raises(PolicyConfigError) as err:
        parse_config("gpu-capacity", GpuPoolsConfig, {"externalPools": {"a100": -1}})
    msg = str(err.value)
    assert "invalid configuration for policy 'gpu-capacity'" in msg
    assert "gpu-capacity.externalPools.a100 = -1: Input should be greater than 0" in msg
    assert "pool name -> total `nvidia.com/gpu`" in msg
    assert "--policy-pack-config" in msg


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(PolicyConfigError) as err:
        parse_config("pdb-required", PdbConfig, {"exemptions": ["models/iris"]})
    assert "pdb-required.exemptions = ['models/iris']: Extra inputs are not permitted" in str(
        err.value
    )
    assert "Known keys: exempt." in str(err.value)


@pytest.mark.parametrize(
    "model, raw, fragment",
    [
        (
            ProbesConfig,
            {"requiredProbes": ["readiness"]},
            "'readinessProbe', 'livenessProbe' or 'startupProbe'",
        ),
        (
            SecretEnvConfig,
            {"secretNamePatterns": ["(TOKEN"]},
            "'(TOKEN' is not a valid regular expression",
        ),
        (PdbConfig, {"exempt": ["iris"]}, "'iris' must be written as 'namespace/name'"),
    ],
)
def test_invalid_values_are_explained(model, raw, fragment):
    with pytest.raises(PolicyConfigError) as err:
        parse_config("rule", model, raw)
    assert fragment in str(err.value)


def test_engine_numbers_and_enforcement_level_are_accepted():
    # The engine sends JSON numbers as floats and the level beside the options.
    cfg = parse_config(
        "gpu-capacity",
        GpuPoolsConfig,
        {"enforcementLevel": "advisory", "externalPools": {"a100": 8.0}},
    )
    assert cfg.external_pools == {"a100": 8}
    assert parse_config("gpu-capacity", GpuPoolsConfig, None) == GpuPoolsConfig()


def test_options_are_frozen():
    with pytest.raises(ValidationError):
        GpuPoolsConfig().external_pools = {"x": 1}


def test_every_rule_has_a_flat_documented_schema_and_passes_the_compliant_stack():
    stack = ex.compliant_stack()
    assert len({r.name for r in RULES}) == len(RULES)
    for rule in RULES:
        for prop, schema in json_schema_properties(rule.config).items():
            assert "$ref" not in str(schema), (rule.name, prop)
            assert "Default" in schema["description"], (rule.name, prop)
        assert rule.level in ("mandatory", "advisory") and rule.description
        cfg = rule.config()
        found = (
            [m for r in stack for m in rule.check(r.type, r.props, cfg)]
            if rule.kind == "resource"
            else rule.check(stack, cfg)
        )
        assert found == [], rule.name
