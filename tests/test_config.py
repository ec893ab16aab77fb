from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from tfshop.config import from_dict, load_yaml
from tfshop.errors import ConfigError


@dataclass
class Inner:
    rate: float = 0.5
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    size: int = 1
    mode: Literal["a", "b"] = "a"
    flag: bool = False
    path: str | None = None
    inner: Inner = field(default_factory=Inner)

    def validate(self):
        if self.size > 100:
            raise ValueError("size: at most 100")


def test_defaults_and_values():
    cfg = from_dict(Outer, {"size": 3, "inner": {"rate": 2, "names": ["x"]}})
    assert cfg == Outer(size=3, inner=Inner(rate=2.0, names=["x"]))
    assert isinstance(cfg.inner.rate, float)
    written = yaml.safe_load("rate: 1e12\nnames: [x]")  # YAML 1.1 reads 1e12 as a string
    assert from_dict(Inner, written).rate == 1e12


@pytest.mark.parametrize(
    "data, message",
    [
        ({"sise": 3}, "demo.yaml: unknown key 'sise'"),
        ({"size": "3"}, "demo.yaml.size: expected an integer, got '3'"),
        ({"size": True}, "demo.yaml.size: expected an integer"),
        ({"mode": "c"}, "demo.yaml.mode: 'c' is not one of 'a', 'b'"),
        ({"flag": "yes"}, "demo.yaml.flag: expected true or false"),
        ({"inner": {"rate": "x"}}, "demo.yaml.inner.rate: expected a number"),
        ({"inner": {"rate": "1e"}}, "demo.yaml.inner.rate: expected a number"),
        ({"inner": {"names": "x"}}, "demo.yaml.inner.names: expected a list"),
        ({"inner": {"bogus": 1}}, "demo.yaml.inner: unknown key 'bogus'"),
        ({"size": 101}, "demo.yaml.size: at most 100"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data, "demo.yaml")
    assert str(err.value).startswith(message)


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML \(line \d+, column \d+\)"):
        load_yaml(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_yaml(scalar)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml(empty) == {}


def test_model_config_groups_take_flat_keys_too():
    from tfshop.models.config import ModelConfig

    flat = ModelConfig.of(
        text_dim=8, expert_units=[16], num_experts=2, retrieval_temperature=0.5, pair_encoder="bi"
    )
    grouped = ModelConfig.of(
        text={"dim": 8}, experts={"units": [16], "num_experts": 2}, retrieval={"temperature": 0.5}
    )
    assert flat == grouped and flat.text.dim == 8 and flat.experts.units == [16]
    with pytest.raises(ConfigError, match="model.text: unknown key 'dimm'"):
        ModelConfig.of(text={"dimm": 8})
    with pytest.raises(ConfigError, match="model.experts.units: needs at least one layer"):
        ModelConfig.of(expert_units=[])
