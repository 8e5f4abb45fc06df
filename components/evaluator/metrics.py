"""The Evaluator's metrics and blessing decision, in numpy, from one pass of predictions.

Input: the eval rows' raw columns (labels, presence masks, device, position, request
ids) and each model's `serving_default` outputs, as arrays (see `Scored`). Output: one
JSON-able dict that report.md renders and the blessing reads. Why not TFMA: it computes
every metric of every slice in per-example Python (~9 ms an example at 24 slices × 5
heads × 7 metrics; issue 15 §2); here each metric is one vectorized pass per slice.

- Per head and slice: n (rows with the head's label: presence > 0), AUC, log loss,
  calibration (binary); MSE, MAE (regression); mean prediction, mean label and
  calibration = mean prediction / mean label (both). Slices: overall, each device,
  position buckets (`evaluation.position_buckets`, e.g. 0, 1, 2-4, 5-9, 10+) and each
  value of the `features.slices` columns. A slice without rows is not reported.
- Ranking: NDCG@k per request of the combined `score`, with each engagement label as
  the gain (linear gain, log2 discount), averaged over the requests with two or more
  candidates whose ideal DCG is positive (NDCG is undefined without any gain). A
  one-candidate request is left out: its NDCG is 1 by construction, whatever the model,
  so counting it would pull the mean towards a perfect ranking in data that mix single
  items and slates (`ranking_requests` in metrics.json: how many were counted and left
  out). Overall and per device (a request is shown on one device); never per position:
  a position slice cuts requests apart. When no request has two or more candidates (an
  item-rating log) there is nothing to rank: NDCG is skipped, with a note. A table
  source has no `request_id`, so it has no ranking at all.
- Notes (`notes` in metrics.json, shown in report.md): what was skipped and why (NDCG
  without slates, one-candidate requests left out of NDCG, a `features.slices` column
  the eval data do not hold).
- Comparison with the baseline on the same rows (components/evaluator/paired.py): binary heads by
  DeLong's AUC difference, regression heads by the MSE ratio, NDCG by the per-request
  paired difference (reported, not gated).
- Blessing: every head must have a finite gated metric (AUC or MSE) and meet its
  absolute floor (`value_threshold`); with a baseline, it is refused only when it is
  worse beyond the tolerance (`max_auc_drop`, `max_mse_increase_ratio`) at
  `evaluation.confidence`: the one-sided bound on the difference, not the point
  estimate, must be past the tolerance. Slices never veto (a sparse slice is noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.components.evaluator import paired
from watchnext.core.config import Config, Head
from watchnext.core.contract import SCORE_OUTPUT

import numpy as np

OVERALL = "overall"
# The note metrics.json and report.md carry when NDCG per request would be 1 by construction.
SINGLE_CANDIDATE_NOTE = "NDCG skipped: every request has one candidate"
# Predictions are clipped this far from 0 and 1 in the log loss (a confident miss costs
# about 34 nats instead of infinity).
LOG_LOSS_EPSILON = 1e-15
# Resolution of the curves report.md plots (overall slice only): at most this many ROC
# points, and this many equal-count bins of the prediction for the calibration curve.
ROC_POINTS = 101
CALIBRATION_BINS = 10


@dataclass
class Scored:
    """The eval rows: raw columns by name, and each model's outputs by output name.

    `columns` holds labels, presence masks, slicing columns (device as str, position as
    int) and `request` (an int64 code per row, equal within one request).
    """

    columns: Mapping[str, np.ndarray]
    candidate: Mapping[str, np.ndarray]
    baseline: Mapping[str, np.ndarray] | None = None

    @property
    def n(self) -> int:
        return len(next(iter(self.candidate.values())))


def ranking_gains(config: Config) -> list[str]:
    """Labels used as NDCG gains: those of the engagement heads (e.g. click, watch_time)."""
    gains = [h.label for h in config.heads if h.group == "engagement" and not h.presence]
    return gains or [config.heads[0].label]


def position_bucket_names(edges: tuple[int, ...]) -> list[str]:
    """Names of the buckets with these lower edges: (0, 1, 2, 5, 10) → 0, 1, 2-4, 5-9, 10+."""
    names = []
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        names.append(f"{lo}+" if hi is None else str(lo) if hi == lo + 1 else f"{lo}-{hi - 1}")
    return names


def slices(config: Config, columns: Mapping[str, np.ndarray], n: int) -> list[tuple[str, np.ndarray]]:
    """(name, row mask) of every non-empty slice, overall first."""
    out = [(OVERALL, np.ones(n, dtype=bool))]
    f = config.features
    for name in [f.device, *f.slices]:
        if name and name in columns:  # a missing slice column is noted by `notes`
            values = columns[name]
            out += [(f"{name}={v}", values == v) for v in np.unique(values)]
    if f.position:
        edges = config.evaluation.position_buckets
        bucket = np.searchsorted(np.asarray(edges), columns[f.position], side="right") - 1
        for i, label in enumerate(position_bucket_names(edges)):
            mask = bucket == i
            if mask.any():
                out.append((f"{f.position}={label}", mask))
    return [(name, mask) for name, mask in out if mask.any()]


def _finite(value: float) -> float | None:
    """JSON has no NaN: undefined metrics are stored as null."""
    return float(value) if math.isfinite(value) else None


def head_metrics(head: Head, labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray) -> dict:
    """The head's metrics on the rows with weight > 0 (weights: presence, or ones)."""
    keep = weights > 0
    y, p, w = labels[keep].astype(np.float64), predictions[keep].astype(np.float64), weights[keep]
    total = w.sum()
    mean_pred, mean_label = float(p @ w / total), float(y @ w / total)
    out: dict[str, Any] = {"n": int(keep.sum()), "mean_prediction": _finite(mean_pred),
                           "mean_label": _finite(mean_label),
                           "calibration": _finite(mean_pred / mean_label) if mean_label else None}
    if head.type == "binary":
        clipped = np.clip(p, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
        log_loss = -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)) @ w / total
        out.update(auc=_finite(paired.auc(y, p, w)), log_loss=_finite(float(log_loss)),
                   positives=float(y @ w))
    else:
        out.update(mse=_finite(float((y - p) ** 2 @ w / total)),
                   mae=_finite(float(np.abs(y - p) @ w / total)))
    return out


def curves(head: Head, labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray) -> dict:
    """The overall slice's plot data: calibration bins (both head types) and the ROC (binary).

    calibration: rows with weight > 0 sorted by prediction and cut into CALIBRATION_BINS
    bins of equal count; per bin the weighted mean prediction and mean label (a calibrated
    head lies on the diagonal). roc: (false positive rate, true positive rate) at up to
    ROC_POINTS thresholds taken at evenly spaced ranks of the prediction, from (0, 0) to (1, 1).
    """
    keep = weights > 0
    y, p, w = labels[keep].astype(np.float64), predictions[keep].astype(np.float64), weights[keep]
    if not len(y):
        return {}
    order = np.argsort(p, kind="stable")
    bins = [b for b in np.array_split(order, min(CALIBRATION_BINS, len(order))) if len(b)]
    out: dict[str, Any] = {"calibration": {
        "mean_prediction": [_finite(float(p[b] @ w[b] / w[b].sum())) for b in bins],
        "mean_label": [_finite(float(y[b] @ w[b] / w[b].sum())) for b in bins],
        "n": [len(b) for b in bins]}}
    if head.type == "binary":
        desc = order[::-1]
        tp, fp = np.cumsum(y[desc] * w[desc]), np.cumsum((1 - y[desc]) * w[desc])
        # Only the last row of a run of tied predictions is a threshold.
        last = np.r_[p[desc][1:] != p[desc][:-1], True]
        tp, fp = tp[last], fp[last]
        pick = np.unique(np.linspace(0, len(tp) - 1, min(ROC_POINTS, len(tp))).round().astype(int))
        if tp[-1] > 0 and fp[-1] > 0:
            out["roc"] = {"fpr": [0.0, *(fp[pick] / fp[-1]).round(5).tolist()],
                          "tpr": [0.0, *(tp[pick] / tp[-1]).round(5).tolist()]}
    return out


def _weights(head: Head, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    return columns[head.presence].astype(np.float64) if head.presence else np.ones(n)


def ndcg_per_request(request: np.ndarray, score: np.ndarray, gain: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """(request codes, NDCG@k) of every request with 2+ candidates and a positive ideal DCG, in code order.

    A one-candidate request is left out: its NDCG is 1 whatever the score, not a measure
    of ranking. Rows are sorted by (request, -score) and by (request, -gain); a row's rank
    is its offset from its request's first row, its discount 1/log2(rank + 2) within the top k.
    """
    def dcg(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        req = request[order]
        starts = np.flatnonzero(np.r_[True, req[1:] != req[:-1]])
        rank = np.arange(len(req)) - np.repeat(starts, np.diff(np.r_[starts, len(req)]))
        discount = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
        return req[starts], np.add.reduceat(gain[order] * discount, starts)

    codes, actual = dcg(np.lexsort((-score, request)))
    _, ideal = dcg(np.lexsort((-gain, request)))
    _, sizes = np.unique(request, return_counts=True)  # in code order, like `codes`
    defined = (ideal > 0) & (sizes >= 2)
    return codes[defined], actual[defined] / ideal[defined]


def has_slates(request: np.ndarray) -> bool:
    """Whether some request has two or more candidates (else NDCG per request is always 1)."""
    return bool(len(request)) and int(np.unique(request, return_counts=True)[1].max()) >= 2


def ranking_requests(request: np.ndarray) -> dict[str, int]:
    """How many requests NDCG can rank (2+ candidates) and how many it leaves out (one candidate).

    Gain-independent: a ranked request without any gain is further left out per gain
    label (see each NDCG entry's `requests`).
    """
    sizes = np.unique(request, return_counts=True)[1]
    single = int((sizes == 1).sum())
    return {"requests": len(sizes), "ranked": len(sizes) - single, "single_candidate": single}


def notes(config: Config, columns: Mapping[str, np.ndarray]) -> list[str]:
    """What the evaluation skips and why, in the words report.md prints."""
    out = [f"slice `{name}` skipped: the eval data have no column {name!r}"
           for name in config.features.slices if name and name not in columns]
    if config.features.request_id:
        if not has_slates(columns["request"]):
            out.append(SINGLE_CANDIDATE_NOTE)
        else:
            counts = ranking_requests(columns["request"])
            if counts["single_candidate"]:
                out.append(f"NDCG averaged over the {counts['ranked']:,} requests with two or more "
                           f"candidates: {counts['single_candidate']:,} of {counts['requests']:,} "
                           "requests have one candidate (NDCG 1 by construction) and are left out")
    return out


def ranking(config: Config, scored: Scored) -> dict:
    """{slice: {ndcg_<gain>@k: {candidate, baseline?, diff?, se?, requests}}} overall and per device."""
    request = scored.columns["request"]
    device = config.features.device
    per_request_device = None
    if device:
        # A request's device is the one of its rows (all alike): first row per code.
        codes, first = np.unique(request, return_index=True)
        per_request_device = dict(zip(codes.tolist(), scored.columns[device][first].tolist(), strict=True))
    out: dict[str, dict] = {}
    conf = config.evaluation.confidence
    for gain_name in ranking_gains(config):
        gain = scored.columns[gain_name].astype(np.float64)
        for k in config.evaluation.ndcg_cutoffs:
            codes, cand = ndcg_per_request(request, scored.candidate[SCORE_OUTPUT], gain, k)
            base = (ndcg_per_request(request, scored.baseline[SCORE_OUTPUT], gain, k)[1]
                    if scored.baseline is not None else None)
            groups = [(OVERALL, np.ones(len(codes), dtype=bool))]
            if per_request_device is not None:
                devices = np.array([per_request_device[c] for c in codes.tolist()], dtype=object)
                groups += [(f"{device}={d}", devices == d) for d in sorted(set(devices.tolist()))]
            for name, mask in groups:
                entry: dict[str, Any] = {"requests": int(mask.sum()),
                                         "candidate": _finite(float(cand[mask].mean()))}
                if base is not None:
                    result = paired.paired_mean(cand[mask], base[mask], f"ndcg_{gain_name}@{k}", conf)
                    entry.update(baseline=_finite(result.baseline), diff=_finite(result.diff),
                                 se=_finite(result.se), lower=_finite(result.lower),
                                 upper=_finite(result.upper))
                out.setdefault(name, {})[f"ndcg_{gain_name}@{k}"] = entry
    return out


def compare(config: Config, scored: Scored) -> dict[str, dict]:
    """The paired comparison of every head's gated metric with the baseline's, on the same rows."""
    assert scored.baseline is not None
    out = {}
    for head in config.heads:
        test = paired.paired_auc if head.type == "binary" else paired.paired_mse_ratio
        result = test(scored.columns[head.label], scored.candidate[head.name], scored.baseline[head.name],
                      weights=_weights(head, scored.columns, scored.n),
                      confidence=config.evaluation.confidence)
        out[head.name] = {k: (_finite(v) if isinstance(v, float) else v) for k, v in result.to_dict().items()}
    return out


def decide(config: Config, heads: Mapping[str, dict], comparison: Mapping[str, dict] | None) -> list[str]:
    """Why the candidate is not blessed (empty: blessed). See the module docstring."""
    failures = []
    e = config.evaluation
    for head in config.heads:
        overall = heads[head.name]["slices"].get(OVERALL)
        metric = "auc" if head.type == "binary" else "mse"
        value = overall.get(metric) if overall else None
        if value is None:
            failures.append(f"{head.name}/{metric} = nan on overall, needs a finite value")
            continue
        if head.value_threshold > 0:
            if head.type == "binary" and value < head.value_threshold:
                failures.append(f"{head.name}/auc = {value:.4g} on overall, needs value_threshold: "
                                f">= {head.value_threshold:g}")
            if head.type == "regression" and value > head.value_threshold:
                failures.append(f"{head.name}/mse = {value:.4g} on overall, needs value_threshold: "
                                f"<= {head.value_threshold:g}")
        c = (comparison or {}).get(head.name)
        if not c or c["baseline"] is None:
            continue  # first run (no baseline) or a baseline without a defined metric: floors only
        if head.type == "binary":
            # With a single positive or negative row the error is undefined: the point estimate decides.
            bound = c["upper"] if c["upper"] is not None else c["diff"]
            if bound < -e.max_auc_drop:
                failures.append(
                    f"{head.name}/auc (vs baseline) = {c['diff']:+.4f} "
                    f"({c['candidate']:.4f} vs {c['baseline']:.4f}, "
                    f"se {_fmt(c['se'])}, {e.confidence:.0%} upper bound {bound:+.4f}) on overall, "
                    f"needs change_threshold: upper bound >= {-e.max_auc_drop:g}")
        else:
            bound = c["lower"] if c["lower"] is not None else c["diff"]
            if bound is not None and bound > 1 + e.max_mse_increase_ratio:
                failures.append(
                    f"{head.name}/mse (vs baseline) = ×{c['diff']:.4f} "
                    f"({c['candidate']:.4g} vs {c['baseline']:.4g}, "
                    f"{e.confidence:.0%} lower bound ×{bound:.4f}) on overall, "
                    f"needs change_threshold: lower bound <= ×{1 + e.max_mse_increase_ratio:g}")
    return failures


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def evaluate(config: Config, scored: Scored) -> dict:
    """Every metric, the comparison and the verdict, as one JSON-able dict."""
    n = scored.n
    cuts = slices(config, scored.columns, n)
    heads: dict[str, dict] = {}
    for head in config.heads:
        w = _weights(head, scored.columns, n)
        labels, predictions = scored.columns[head.label], scored.candidate[head.name]
        per_slice = {name: head_metrics(head, labels[mask], predictions[mask], w[mask])
                     for name, mask in cuts if (w[mask] > 0).any()}
        heads[head.name] = {"type": head.type, "presence": head.presence, "slices": per_slice,
                            "curves": curves(head, labels, predictions, w)}
    comparison = compare(config, scored) if scored.baseline is not None else None
    failures = decide(config, heads, comparison)
    skipped = notes(config, scored.columns)
    result: dict[str, Any] = {
        "examples": n, "confidence": config.evaluation.confidence, "heads": heads,
        "comparison": comparison, "blessed": not failures, "failures": failures, "notes": skipped,
    }
    if config.features.request_id and SINGLE_CANDIDATE_NOTE not in skipped:
        result["ranking"] = ranking(config, scored)
        result["ranking_requests"] = ranking_requests(scored.columns["request"])
    return result
