"""Reading a YAML config file: the defaults, the file's sections merged over them, then overrides."""

from __future__ import annotations

from typing import Any

from watchnext.core.config.checks import ConfigError
from watchnext.core.config.config import Config, from_dict
from watchnext.core.config.logs import config_names_exist


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the defaults, a YAML file over them (if given), then `overrides`.

    With data.source logs, every feature and head label the config names must be a field or label
    of its declared `log_schema` (logs.config_names_exist): a misspelt name fails here, before
    any data is read. Only here: a Config built in memory (`from_dict`, a component's JSON) may
    describe examples that never came from the logs (model tests, the components' views).
    """
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
    config = from_dict(values, source=source)
    if config.data.source == "logs":
        try:
            config_names_exist(config.log_schema, config.features, config.heads)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
    return config


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
