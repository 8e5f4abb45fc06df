"""The simulator: known examination curve, task correlation, determinism, schema conformance."""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os

from watchnext.components.log_example_gen import validation
from watchnext.core import log_schema as schema
from watchnext.simulator.simulate import SimulatorParams, add_arguments, from_args, simulate

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest


def _read(out_dir: str, log: str) -> pd.DataFrame:
    files = sorted(glob.glob(os.path.join(out_dir, log, "span=*", "*")))
    if files[0].endswith(".parquet"):
        return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    return pd.concat([pd.read_json(f, lines=True, compression="gzip", dtype=False, convert_dates=False)
                      for f in files], ignore_index=True)


def _records(out_dir: str, log: str) -> list[dict]:
    """Records exactly as the ExampleGen decodes them (json.loads per line, or Parquet rows)."""
    records = []
    for path in sorted(glob.glob(os.path.join(out_dir, log, "span=*", "*"))):
        if path.endswith(".parquet"):
            records += pq.read_table(path).to_pylist()
        else:
            with gzip.open(path, "rt") as f:
                records += [json.loads(line) for line in f]
    return records


def _with_labels(out_dir: str) -> pd.DataFrame:
    truth, events = _read(out_dir, schema.TRUTH_LOG), _read(out_dir, schema.EVENTS_LOG)
    for kind in (schema.CLICK_EVENT, schema.LIKE_EVENT):
        hit = events[events["event"] == kind]
        keys = set(zip(hit["request_id"], hit["candidate_video_id"], strict=True))
        truth[kind] = [k in keys for k in zip(truth["request_id"], truth["candidate_video_id"], strict=True)]
    return truth


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    ranks = pd.Series(score).rank().to_numpy()
    n1, n0 = label.sum(), (~label).sum()
    return float((ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """200k impressions, 30 % of requests shuffled."""
    out = str(tmp_path_factory.mktemp("sim"))
    params = SimulatorParams(impressions_per_day=200_000, shuffle_fraction=0.3, seed=11)
    summary = simulate(out, params)
    return params, summary, _with_labels(out)


def test_summary_counts(big):
    params, summary, truth = big
    [span] = summary["spans"]
    assert summary["impressions"] == len(truth) == 200_000
    assert span["requests"] == 20_000 and span["events.click"] == truth["click"].sum()
    assert 0.25 < span["shuffled_requests"] / span["requests"] < 0.35
    assert 0.05 < span["ctr"] < 0.25
    assert len(span["files"]) == 3 * params.shards


def test_examination_curve_is_recovered_on_shuffled_requests(big):
    """On shuffled slates position is independent of relevance, so per (position, device)
    Σ clicks / Σ p_click estimates e(position, device); it must match the configured curve."""
    params, _, truth = big
    device_index = truth["device"].map({d: i for i, d in enumerate(params.devices)}).to_numpy()
    np.testing.assert_allclose(truth["examination"],
                               params.examination(truth["position"].to_numpy(), device_index), atol=1e-6)
    shuffled = truth[truth["shuffled"] == 1]
    checked = 0
    for (position, device), cell in shuffled.groupby(["position", "device"]):
        expected = params.examination(np.array(position), np.array(params.devices.index(device)))
        p_sum = cell["p_click"].sum()
        estimate = cell["click"].sum() / p_sum
        p_event = cell["examination"] * cell["p_click"]
        stderr = np.sqrt((p_event * (1 - p_event)).sum()) / p_sum
        # 4 standard errors (binomial noise) plus 0.01 for the 6-decimal rounding of truth.
        assert abs(estimate - expected) < 4 * stderr + 0.01, (position, device, estimate, expected, stderr)
        checked += 1
    assert checked == params.slate_size * len(params.devices)
    # The curve's exponent per device, fitted by click-weighted least squares of
    # log(ê) = -eta · log(1 + position), is the configured eta (tolerance ~ 1/sqrt(clicks)).
    for device, eta in zip(params.devices, params.device_eta, strict=True):
        cells = shuffled[shuffled["device"] == device].groupby("position")
        ratio, weight = cells["click"].sum() / cells["p_click"].sum(), cells["click"].sum()
        x, y = np.log1p(ratio.index.to_numpy()), np.log(ratio.to_numpy())
        eta_hat = -(weight * x * y).sum() / (weight * x * x).sum()
        assert abs(eta_hat - eta) < max(0.05, 2.5 / np.sqrt(weight.sum())), (device, eta, eta_hat)


def test_true_click_propensity_is_learnable(big):
    _, _, truth = big
    assert _auc(truth["p_click"].to_numpy(), truth["click"].to_numpy()) > 0.75


def test_task_correlation_shows_in_truth_and_labels(tmp_path):
    def correlations(c: float) -> tuple[float, float]:
        out = str(tmp_path / f"c{c}")
        simulate(out, impressions_per_day=40_000, task_correlation=c, seed=5)
        t = _with_labels(out)
        logit = lambda p: np.log(p / (1 - p))  # noqa: E731
        truth_corr = np.corrcoef(logit(t["p_click"]), logit(t["p_like"]))[0, 1]
        clicked = t[t["click"]]
        label_corr = np.corrcoef(clicked["p_click"], clicked["like"].astype(float))[0, 1]
        return truth_corr, label_corr

    high, low = correlations(1.0), correlations(0.2)
    assert high[0] > 0.8 and high[0] > low[0] + 0.3, (high, low)
    assert high[1] > low[1] + 0.1, (high, low)


def test_a_popularity_biased_policy_shows_popular_videos_higher(tmp_path):
    """policy_popularity confounds popularity (seen as video_log_views) with position, not with relevance."""
    def by_position(weight: float) -> pd.DataFrame:
        out = str(tmp_path / f"w{weight}")
        simulate(out, impressions_per_day=20_000, policy_popularity=weight, seed=5)
        truth = _read(out, schema.TRUTH_LOG)
        keys = ["request_id", "candidate_video_id"]
        impressions = _read(out, schema.IMPRESSIONS_LOG)[[*keys, "video_log_views"]]
        rows = truth.merge(impressions, on=keys, validate="one_to_one")
        return rows[~rows["shuffled"].astype(bool)].groupby("position")[["video_log_views", "p_click"]].mean()

    neutral, biased = by_position(0.0), by_position(1.0)
    views_gap = lambda t: t["video_log_views"][0] - t["video_log_views"][9]  # noqa: E731
    relevance_gap = lambda t: t["p_click"][0] - t["p_click"][9]  # noqa: E731
    assert views_gap(biased) > views_gap(neutral) + 0.5, (neutral, biased)
    # The top slots hold less relevant videos than a relevance-ranked policy puts there.
    assert 0 < relevance_gap(biased) < relevance_gap(neutral), (neutral, biased)
    with pytest.raises(ValueError, match="policy_popularity"):
        SimulatorParams(policy_popularity=float("nan")).validate()


def _digests(out_dir: str) -> dict[str, str]:
    return {os.path.relpath(p, out_dir): hashlib.sha256(open(p, "rb").read()).hexdigest()
            for p in sorted(glob.glob(os.path.join(out_dir, "*", "*", "*")))}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    runs = {name: str(tmp_path / name) for name in ("a", "b", "c")}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate(runs[name], days=2, impressions_per_day=3000, seed=seed)
    a, b, c = (_digests(runs[n]) for n in "abc")
    assert len(a) == 2 * 3 * 4 and a == b
    assert set(a) == set(c) and all(a[k] != c[k] for k in a)
    first = os.path.join(runs["a"], "impressions", "span=20260102", "part-00000-of-00004.jsonl.gz")
    with gzip.open(first) as f:
        assert json.loads(f.readline())["request_id"].startswith("20260102-")


@pytest.mark.parametrize("log_format", ["jsonl", "parquet"])
def test_every_record_follows_the_log_schema(tmp_path, log_format):
    out = str(tmp_path / log_format)
    simulate(out, impressions_per_day=3000, log_format=log_format, survey_rate=0.5)
    impressions, events = _records(out, schema.IMPRESSIONS_LOG), _records(out, schema.EVENTS_LOG)
    for record in impressions:
        assert validation.validate_impression(record)[1] is None, record
    for record in events:
        assert validation.validate_event(record)[1] is None, record
    assert {e["event"] for e in events} == set(schema.EVENT_TYPES)
    assert len({(r["request_id"], r["candidate_video_id"]) for r in impressions}) == len(impressions) == 3000
    truth = _read(out, schema.TRUTH_LOG)
    assert list(truth.columns) == [f.name for f in schema.TRUTH_FIELDS]


def test_parameters_are_validated_and_parsed_from_flags():
    with pytest.raises(ValueError, match="slate_size"):
        SimulatorParams(slate_size=schema.MAX_POSITION + 1).validate()
    with pytest.raises(ValueError, match="devices"):
        SimulatorParams(devices=("mobile", "watch"), device_shares=(1, 1), device_eta=(1, 1)).validate()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--days", "3", "--device-eta", "1,1,2,2", "--log-format", "parquet",
                              "--task-correlation", "0.5"])
    params = from_args(args)
    assert (params.days, params.device_eta, params.log_format, params.task_correlation) == (
        3, (1.0, 1.0, 2.0, 2.0), "parquet", 0.5)
    assert params.seed == SimulatorParams().seed
