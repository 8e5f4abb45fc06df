"""Warm start: begin training from the last blessed model instead of from scratch.

A daily job retrains on a window that overlaps yesterday's, so most of yesterday's
weights are still right. Dense weights are copied by variable name when their shapes
agree. Embedding tables cannot be copied as they are: Transform recomputes each
vocabulary on the new window, so an id's row moves, new ids appear and old ones drop
out. Rows are therefore matched by token: the base model's vocabulary files (its
SavedModel assets, one per vocabulary name) give each old row's id, and every id the
new vocabulary shares with the old one gets its old row; new ids keep their fresh
initialization. OOV bucket rows (hashed, so stable) are copied when the bucket count
is unchanged.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import Config

import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

# The encoder names the table of vocabulary V "<V>_embedding" (models/layers/feature_encoder.py).
EMBEDDING_SUFFIX = "_embedding/embeddings:0"
# The shallow tower's tables are indexed by device id (alone and crossed with position).
DEVICE_INDEXED_PREFIX = "shallow_tower/"


@dataclass
class WarmStartReport:
    """What was carried over from the base model."""

    base_model: str
    copied: list[str] = field(default_factory=list)
    # name → (kept rows, new rows): embedding rows, or fused experts when only their count changed.
    remapped: dict[str, tuple[int, int]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # name → why
    # Fused expert variables built from a base model's per-expert ones (see `stacked_experts`).
    stacked: list[str] = field(default_factory=list)


def read_vocabulary(path: str) -> list[bytes]:
    """One token per line, as tf.Transform writes its vocabulary files."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return [line.rstrip(b"\n") for line in f]


def remap_rows(old: np.ndarray, old_vocab: Sequence[bytes], new: np.ndarray,
               new_vocab: Sequence[bytes], oov_buckets: int) -> tuple[np.ndarray, int]:
    """`new` with each shared token's row taken from `old`; returns (table, rows kept)."""
    out = new.copy()
    index = {t: i for i, t in enumerate(old_vocab)}
    kept = 0
    for i, token in enumerate(new_vocab):
        j = index.get(token)
        if j is not None and j < old.shape[0]:
            out[i] = old[j]
            kept += 1
    old_oov = old.shape[0] - len(old_vocab)
    if oov_buckets and old_oov == oov_buckets and new.shape[0] - len(new_vocab) == oov_buckets:
        out[len(new_vocab):] = old[len(old_vocab):]
    return out, kept


def warm_start(model: Any, base_model_dir: str, new_vocabularies: Mapping[str, Sequence[bytes]],
               config: Config) -> WarmStartReport:
    """Assign the base model's weights to `model` (already built) where they still apply."""
    report = WarmStartReport(base_model_dir)
    base = tf.saved_model.load(base_model_dir)
    # Variables created inside fit() carry no model-name scope, ones created by an eager
    # call do ("<model name>/..."): compare names without it.
    prefix = f"{model.name}/"

    def key(name: str) -> str:
        return name[len(prefix):] if name.startswith(prefix) else name

    old = {key(v.name): v for v in base.variables}
    oov = {f.vocabulary: f.oov_buckets for f in config.features.ids}
    # None without a device feature (a table): then there is no shallow tower either.
    device_vocab = next((f.vocabulary for f in config.features.ids if f.name == config.features.device), None)
    for var in model.trainable_variables:
        name = key(var.name)
        source = old.get(name)
        if source is None:
            stacked = stacked_experts(name, old)
            if stacked is not None and stacked.shape == tuple(var.shape):
                var.assign(stacked)
                report.stacked.append(name)
            else:
                report.skipped[name] = "not in the base model"
            continue
        vocab = _vocabulary_of(name, new_vocabularies)
        if name.startswith(DEVICE_INDEXED_PREFIX) and not _same_vocabulary(
                base_model_dir, device_vocab, new_vocabularies):
            report.skipped[name] = f"indexed by the {device_vocab!r} vocabulary, which changed"
            continue
        if vocab is not None:
            vocab_file = os.path.join(base_model_dir, "assets", vocab)
            if not tf.io.gfile.exists(vocab_file):
                report.skipped[name] = f"the base model has no vocabulary file {vocab_file}"
                continue
            old_vocab = read_vocabulary(vocab_file)
            if source.shape[1] != var.shape[1]:
                report.skipped[name] = f"embedding width changed {source.shape[1]} → {var.shape[1]}"
                continue
            table, kept = remap_rows(source.numpy(), old_vocab, var.numpy(), new_vocabularies[vocab],
                                     oov.get(vocab, 0))
            var.assign(table)
            report.remapped[name] = (kept, var.shape[0])
        elif source.shape == var.shape:
            var.assign(source)
            report.copied.append(name)
        elif _FUSED_EXPERT_VARIABLE.match(name) and source.shape[1:] == var.shape[1:]:
            # The expert count changed, not their width: experts 0..min(n_old, n_new)-1 carry over.
            kept = min(source.shape[0], var.shape[0])
            table = var.numpy()
            table[:kept] = source.numpy()[:kept]
            var.assign(table)
            report.remapped[name] = (kept, var.shape[0])
        else:
            report.skipped[name] = f"shape changed {source.shape} → {var.shape}"
    log.info("warm start from %s: %d variables copied, %d stacked from per-expert ones, %d embedding "
             "tables remapped %s, %d skipped %s", base_model_dir, len(report.copied), len(report.stacked),
             len(report.remapped), report.remapped, len(report.skipped), dict(sorted(report.skipped.items())))
    return report


# A FusedExperts variable (models/layers/experts.py): "<scope>/experts<suffix>/kernel_<layer>:0"; the
# per-expert models before it named expert e's layer "<scope>/expert<suffix>_<e>/dense_<layer>/kernel:0".
_FUSED_EXPERT_VARIABLE = re.compile(r"^(?P<scope>(?:.*/)?)experts(?P<suffix>(?:_[^/]+)?)/"
                                    r"(?P<kind>kernel|bias)_(?P<layer>\d+):0$")


def stacked_experts(name: str, old: Mapping[str, Any]) -> np.ndarray | None:
    """A fused expert variable's value stacked from a per-expert base model's variables, if it has them.

    Models trained before the experts were fused (one MLP per expert) stay usable as warm-start
    bases: expert e's layer-i kernel becomes row e of the fused kernel_i (the same map, see
    `models.layers.stack_expert_weights`). None when `name` is not a fused expert variable or
    the base has no expert_0 for it.
    """
    match = _FUSED_EXPERT_VARIABLE.match(name)
    if match is None:
        return None
    scope, suffix, kind, layer = match.group("scope", "suffix", "kind", "layer")
    parts = []
    while (source := old.get(f"{scope}expert{suffix}_{len(parts)}/dense_{layer}/{kind}:0")) is not None:
        parts.append(np.asarray(source.numpy()))
    return np.stack(parts) if parts else None


def _same_vocabulary(base_model_dir: str, vocab: str, new_vocabularies: Mapping[str, Sequence[bytes]]
                     ) -> bool:
    path = os.path.join(base_model_dir, "assets", vocab)
    return tf.io.gfile.exists(path) and read_vocabulary(path) == list(new_vocabularies.get(vocab, []))


def _vocabulary_of(variable_name: str, vocabularies: Mapping[str, Any]) -> str | None:
    """The vocabulary whose encoder table this variable is, if any."""
    if not variable_name.startswith("feature_encoder/") or not variable_name.endswith(EMBEDDING_SUFFIX):
        return None
    vocab = variable_name[len("feature_encoder/"):-len(EMBEDDING_SUFFIX)]
    return vocab if vocab in vocabularies else None
