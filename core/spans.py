"""Which daily span an Examples artifact holds: how ExampleGen records it, read in one place."""

from __future__ import annotations

from typing import Any

# ExampleGen's custom property names on the Examples artifacts it writes.
SPAN = "span"
VERSION = "version"


def span_of(artifact: Any) -> int:
    """The artifact's span. ExampleGen records span and version as custom properties (the
    `span` property of Examples stays 0), as TFX's own SpanRangeStrategy reads them."""
    text = artifact.get_string_custom_property(SPAN)  # older TFX wrote it as a string
    return int(text) if text else artifact.get_int_custom_property(SPAN)
