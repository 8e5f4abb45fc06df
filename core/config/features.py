"""`features`: the model's inputs, named as they appear in the examples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from watchnext.core import log_schema as schema
from watchnext.core.config.checks import check, one_of
from watchnext.core.log_schema import MAX_POSITION

NUMERIC_ENCODINGS = ("buckets", "piecewise_linear")


@dataclass(frozen=True)
class IdFeature:
    """A categorical feature embedded through a vocabulary computed by Transform.

    Features that share `vocabulary` share one vocabulary and one embedding
    table (query video, candidate video and watch history are all videos).
    """

    name: str
    vocabulary: str
    embedding_dim: int = 16
    # Keep the most frequent ids; the rest fall into OOV buckets.
    max_tokens: int = 50000
    oov_buckets: int = 10
    # A multivalent feature (a list of ids) is mean-pooled over its first max_length ids.
    multivalent: bool = False
    max_length: int = 1

    def validate(self, path: str) -> None:
        check(self.max_length >= 1, f"{path}.max_length", "must be >= 1")


@dataclass(frozen=True)
class NumericEmbedding:
    """A numeric feature also fed to the model through its quantile bin (Gorishniy et al., 2022).

    Transform cuts the feature (after log1p, if listed in `log1p_numeric`) at the `buckets`-quantiles
    of the training data; the boundaries are constants of the Transform graph, so serving still
    sends the raw value. An MLP over one z-scored scalar must spend its first layer carving the
    value into ranges; a heavy-tailed or multimodal feature (capital gains, weeks worked) is
    handed those ranges directly instead.
    - buckets: the bin's index → its own learned `embedding_dim` vector.
    - piecewise_linear: e ∈ [0, 1]^buckets, e_t = 1 for bins below the value's, the fraction of its
      own bin the value covers, 0 above (ordered and continuous) → Dense(embedding_dim) + ReLU.
    """

    name: str
    encoding: Literal["buckets", "piecewise_linear"] = "buckets"
    # Quantile bins (>= 2). Bins that coincide (a mass of zeros) merge; see preprocessing_fn.
    buckets: int = 16
    embedding_dim: int = 4
    # Also feed the z-scored value as before (the embedding adds to it rather than replacing it).
    keep_value: bool = True

    @property
    def output_key(self) -> str:
        """The Transform output (and model input) that carries the encoding, e.g. age_buckets."""
        return f"{self.name}_{self.encoding}"

    def validate(self, path: str) -> None:
        """This embedding's own settings (its name is checked against the features by the section)."""
        one_of(self.encoding, NUMERIC_ENCODINGS, f"{path}.encoding")
        check(self.buckets >= 2, f"{path}.buckets", f"{self.buckets} must be >= 2")
        check(self.embedding_dim >= 1, f"{path}.embedding_dim", f"{self.embedding_dim} must be >= 1")


@dataclass(frozen=True)
class FeaturesSection:
    """The model's inputs: names of raw features as they appear in the examples."""

    ids: tuple[IdFeature, ...] = (
        IdFeature(schema.USER_ID, "user", embedding_dim=16),
        IdFeature(schema.QUERY_VIDEO_ID, "video", embedding_dim=16),
        IdFeature(schema.CANDIDATE_VIDEO_ID, "video", embedding_dim=16),
        IdFeature(schema.DEVICE, "device", embedding_dim=4, max_tokens=100, oov_buckets=1),
        IdFeature(schema.COUNTRY, "country", embedding_dim=4, max_tokens=300, oov_buckets=1),
        IdFeature(schema.WATCH_HISTORY, "video", embedding_dim=16, multivalent=True,
                  max_length=schema.MAX_HISTORY),
    )
    # Numeric features: log1p (if listed in log1p_numeric) then z-scored by Transform.
    numeric: tuple[str, ...] = (schema.VIDEO_DURATION, schema.VIDEO_AGE_DAYS, schema.VIDEO_LOG_VIEWS,
                                schema.USER_ACTIVITY)
    log1p_numeric: tuple[str, ...] = (schema.VIDEO_DURATION, schema.VIDEO_AGE_DAYS)
    # Selection-bias features (the shallow tower's inputs). Empty when the data has none
    # (e.g. a table); model.position_mode must then be "none".
    position: str = schema.POSITION
    device: str = schema.DEVICE
    max_position: int = MAX_POSITION
    # Identifies the request a candidate was shown in (query metrics). Empty: no NDCG.
    request_id: str = schema.REQUEST_ID
    # Extra features to slice evaluation by, besides device and position.
    slices: tuple[str, ...] = ()
    # Numeric features (names in `numeric`) also encoded by their quantile bin; see
    # NumericEmbedding. Empty (default): every numeric feature is its z-scored value only.
    numeric_embeddings: tuple[NumericEmbedding, ...] = ()

    @property
    def inputs(self) -> list[str]:
        """Every regular model input: the id features, then the numeric ones."""
        return [f.name for f in self.ids] + list(self.numeric)

    def validate(self, path: str = "features") -> None:
        """Raise ConfigError naming the key of the first inconsistent value."""
        inputs = self.inputs
        check(len(set(inputs)) == len(inputs), path, f"names repeat: {inputs}")
        for name in self.log1p_numeric:
            check(name in self.numeric, f"{path}.log1p_numeric", f"{name!r} is not in {path}.numeric")
        names = [e.name for e in self.numeric_embeddings]
        for i, e in enumerate(self.numeric_embeddings):
            where = f"{path}.numeric_embeddings[{i}] ({e.name})"
            check(e.name in self.numeric, f"{where}.name", f"{e.name!r} is not in {path}.numeric")
            check(e.name not in names[:i], f"{where}.name", "listed more than once")
            e.validate(where)
            check(e.output_key not in inputs and e.output_key != self.position, f"{where}.name",
                  f"its encoding's output {e.output_key!r} is already a feature or label name")
        if self.device:
            check(self.device in [f.name for f in self.ids], f"{path}.device",
                  f"{self.device!r} must be one of {path}.ids")
        if self.position:
            check(self.position not in inputs, f"{path}.position",
                  "position is a bias feature, not a regular input")
        check(self.max_position >= 1, f"{path}.max_position", "must be >= 1")
        for f in self.ids:
            f.validate(f"{path}.ids ({f.name})")
