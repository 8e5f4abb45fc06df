"""The one error a config raises, and the two checks every section's `validate` is made of."""

from __future__ import annotations

from typing import Any

from watchnext.core.errors import UsageError


class ConfigError(UsageError, ValueError):
    """A configuration value is unknown, of the wrong type or inconsistent."""


def check(ok: bool, key: str, message: str) -> None:
    """Raise ConfigError naming the dotted `key` unless `ok`."""
    if not ok:
        raise ConfigError(f"config key {key}: {message}")


def one_of(value: Any, allowed: tuple[str, ...], key: str) -> None:
    """Raise ConfigError naming `key` unless `value` is one of `allowed`."""
    check(value in allowed, key, f"{value!r} is not one of {allowed}")
