"""What `Config` and the components' views of it (views.py) share: names derived from the heads,
(de)serialization, and validated copies. Each subclass is a frozen dataclass of sections."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from watchnext.core.config.heads import Head, head_named, label_keys

S = TypeVar("S", bound="Sections")


class Sections:
    """A frozen dataclass of config sections, among them `heads`."""

    heads: tuple[Head, ...]

    def validate(self) -> None:
        raise NotImplementedError

    @property
    def head_names(self) -> list[str]:
        return [h.name for h in self.heads]

    def head(self, name: str) -> Head:
        return head_named(self.heads, name)

    @property
    def label_keys(self) -> list[str]:
        """Every label-like column: labels and presence indicators (never model inputs)."""
        return label_keys(self.heads)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # every subclass is a dataclass

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self: S, **sections: Any) -> S:
        """A copy with whole sections replaced (`cfg.replace(training=...)`), validated."""
        new = dataclasses.replace(self, **sections)
        new.validate()
        return new
