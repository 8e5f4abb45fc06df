"""Plain mappings (parsed YAML or JSON) → typed, frozen config dataclasses.

Generic: it knows dataclasses and type hints, not watchnext's sections. A key that is not a
field raises ConfigError naming its dotted path, with the closest known key ("did you mean");
a value of the wrong type raises naming the path and the type it should have.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

from watchnext.core.config.checks import ConfigError


def coerce(value: Any, hint: Any, path: str) -> Any:
    """Convert a YAML/JSON value to the annotated type, or raise naming `path`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key {path}: expected a mapping, got {type(value).__name__}")
        return build(hint, value, path, base=None)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {path}: expected a list, got {type(value).__name__}")
        item = args[0]
        return tuple(coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key {path}: {value!r} is not one of {list(args)}")
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return coerce(value, arg, path)
            except ConfigError:
                continue
        raise ConfigError(f"config key {path}: {value!r} does not fit {hint}")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {path}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {path}: expected a string, got {value!r}")
        return value
    return value


def build(cls: Any, values: dict[str, Any], path: str, base: Any) -> Any:
    """Build dataclass `cls` from `values`, starting from `base` (or defaults)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"config key {where}: unknown key{hint}; known keys: {', '.join(names)}")
        sub_base = getattr(base, key) if base is not None else None
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict) and sub_base is not None:
            kwargs[key] = build(hints[key], value, where, sub_base)
        else:
            kwargs[key] = coerce(value, hints[key], where)
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"config key {path or '<root>'}: {e}") from None
