"""Typed configs: dataclasses filled from flat mappings (YAML files, papermill parameters).

`config_from_mapping` is the one place where a params file is checked: an unknown key or a value of
the wrong type is a `ConfigError` that names the key and the file, before any work starts.
Tuples are accepted as lists (papermill passes lists; YAML has no tuples).

A YAML file may start from another: `base: base.yaml` (relative to the file's folder) takes every
key of that file, and the file's own keys replace them (mmdetection's `_base_`, one level or more).
A repeated key in one file is an error, not a silent "last one wins".
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A params file or mapping that does not fit its config class."""


class InvalidValue(ConfigError):
    """A value of the right type that the config cannot run with, raised by a config's
    `__post_init__` without knowing the source; `config_from_mapping` adds the source."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """`value` checked against the annotation `tp` (and converted list -> tuple, int -> float, str -> Path)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: '{key}' must be {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{key}' must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: '{key}' must have {len(args)} entries, got {list(value)!r}")
            return tuple(_coerce(v, a, key, where) for v, a in zip(value, args))
        item = args[0] if args else Any
        items = [_coerce(v, item, key, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
        return _no_nul(value, key, where)
    if tp is Path:
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"{where}: '{key}' must be a path, got {value!r}")
        return Path(_no_nul(os.fspath(value), key, where))
    raise TypeError(f"config field '{key}' has an unsupported type {tp!r}")


def _no_nul(value: str, key: str, where: str) -> str:
    """Config strings are names and paths, which cannot hold a NUL byte: say so here, naming the key,
    rather than let the system fail later with "embedded null byte" and no name."""
    if "\0" in value:
        raise ConfigError(f"{where}: '{key}' contains a NUL byte, which no path or name can hold: {value!r}")
    return value


def config_from_mapping(cls: type[C], values: Mapping[str, Any], where: str = "<config>") -> C:
    """An instance of the dataclass `cls` from `values`; defaults fill what is missing."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {type(values).__name__}")
    check_keys(cls, values, where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {key: _coerce(value, hints[key], key, where) for key, value in values.items()}
    missing = [name for name, f in fields.items() if name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    try:
        return cls(**kwargs)
    except InvalidValue as err:
        raise ConfigError(f"{where}: {err}") from None


BASE_KEY = "base"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a mapping with a repeated key is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The flat mapping of one YAML file; a missing file, bad YAML or a repeated key is a ConfigError."""
    path = Path(path)
    try:
        values = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"{path}: params file does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(values, Mapping):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(values).__name__}")
    return dict(values)


def read_layers(path: str | os.PathLike) -> list[tuple[Path, dict[str, Any]]]:
    """A YAML file and the chain of `base:` files under it, deepest base first, without the `base` keys."""
    layers: list[tuple[Path, dict[str, Any]]] = []
    path = Path(path)
    while True:
        values = read_yaml_mapping(path)
        base = values.pop(BASE_KEY, None)
        layers.insert(0, (path, values))
        if base is None:
            return layers
        if not isinstance(base, str):
            raise ConfigError(f"{path}: '{BASE_KEY}' must be a file name, got {base!r}")
        path = path.parent / base
        if any(path.resolve() == seen.resolve() for seen, _ in layers):
            raise ConfigError(f"{path}: '{BASE_KEY}' files form a loop")


def load_config(cls: type[C], path: str | os.PathLike, overrides: Mapping[str, Any] | None = None,
                defaults: Mapping[str, Any] | None = None) -> C:
    """`cls` from a YAML file and its `base:` chain, `defaults` under and `overrides` on top.

    Each file's keys are checked against `cls` under that file's name; the merged config is then
    validated as a whole under the name of `path`.
    """
    merged: dict[str, Any] = dict(defaults or {})
    for layer, values in read_layers(path):
        check_keys(cls, values, str(layer))
        merged.update(values)
    return config_from_mapping(cls, {**merged, **(overrides or {})}, str(path))


def check_keys(cls: type, values: Mapping[str, Any], where: str) -> None:
    """ConfigError naming `where` and the key when a key is not a field of `cls` or has the wrong type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    for key, value in values.items():
        _coerce(value, hints[key], key, where)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain YAML-safe dict of a config dataclass (tuples -> lists, paths -> strings)."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}
