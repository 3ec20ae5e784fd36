"""Typed configs from flat mappings and YAML (ARCHITECTURE.md: validated when loaded)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tinysm.config import ConfigError, InvalidValue, config_from_mapping, config_to_dict, load_config
from tinysm.paths import repo_root, resolve


@dataclass
class Example:
    name: str
    lr: float = 0.01
    epochs: int = 12
    milestones: list[int] = field(default_factory=lambda: [8, 11])
    tile: tuple[int, int] = (640, 512)
    clip: float | None = None
    mode: Literal["none", "sm", "msm"] = "none"
    amp: bool = True
    out: Path = Path("runs")


def test_defaults_coercion_and_round_trip():
    config = config_from_mapping(Example, {"name": "exp", "lr": 1, "tile": [320, 256], "out": "x/y"})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.tile == (320, 256) and config.out == Path("x/y") and config.milestones == [8, 11]
    assert config_from_mapping(Example, config_to_dict(config)) == config


@pytest.mark.parametrize("values, message", [
    ({"name": "e", "lrr": 0.1}, r"unknown key\(s\) \['lrr'\]"),
    ({"name": "e", "epochs": "12"}, r"'epochs' must be an integer, got '12'"),
    ({"name": "e", "epochs": True}, r"'epochs' must be an integer"),
    ({"name": "e", "amp": 1}, r"'amp' must be true or false"),
    ({"name": "e", "tile": "(640, 512)"}, r"'tile' must be a list"),      # papermill's tuple trap
    ({"name": "e", "tile": [1, 2, 3]}, r"'tile' must have 2 entries"),
    ({"name": "e", "mode": "SM"}, r"'mode' must be one of \['none', 'sm', 'msm'\]"),
    ({"name": "e", "clip": "big"}, r"'clip' must be"),
    ({}, r"missing required key\(s\) \['name'\]"),
])
def test_bad_values_name_the_key_and_the_source(values, message):
    with pytest.raises(ConfigError, match=message) as info:
        config_from_mapping(Example, values, "params/x.yaml")
    assert str(info.value).startswith("params/x.yaml: ")


def test_load_config_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: exp4.0  # a comment\nlr: 0.02\nclip: null\n")
    assert load_config(Example, path, {"epochs": 2}) == Example(name="exp4.0", lr=0.02, epochs=2)
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: expected a mapping"):
        load_config(Example, path)
    with pytest.raises(ConfigError, match=r"missing.yaml: params file does not exist"):
        load_config(Example, tmp_path / "missing.yaml")


def test_paths_resolve_from_the_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # a papermill kernel starts in the caller's cwd
    assert (repo_root() / "pyproject.toml").is_file()
    assert resolve("params/x.yaml") == repo_root() / "params/x.yaml"
    assert resolve(tmp_path / "abs") == tmp_path / "abs"


@dataclass
class Checked:
    epochs: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InvalidValue(f"'epochs' must be at least 1, got {self.epochs}")


def test_post_init_errors_get_the_source_added(tmp_path):
    with pytest.raises(ConfigError, match=r"^params/x\.yaml: 'epochs' must be at least 1, got 0$"):
        config_from_mapping(Checked, {"epochs": 0}, "params/x.yaml")
    path = tmp_path / "x.yaml"
    path.write_text("epochs: -2\n")
    with pytest.raises(ConfigError, match=r"x\.yaml: 'epochs' must be at least 1, got -2$") as info:
        load_config(Checked, path)
    assert str(info.value).startswith(str(path))
