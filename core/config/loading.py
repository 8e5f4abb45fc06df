"""Reading a YAML config file: the defaults, the file's sections merged over them, then overrides."""

from __future__ import annotations

from typing import Any

from watchnext.core.config.checks import ConfigError
from watchnext.core.config.config import Config, from_dict


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the defaults, a YAML file over them (if given), then `overrides`."""
    import yaml  # installed with tfx

    values: dict[str, Any] = {}
    source = "<defaults>"
    if path:
        source = path
        try:
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
        values = loaded or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    if overrides:
        values = _deep_merge(values, overrides)
    return from_dict(values, source=source)


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
