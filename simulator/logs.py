"""Writing a simulated day: impressions, events and truth logs, deterministically.

Output is deterministic for a seed: same parameters and policy → byte-identical files
(gzip with mtime 0, records in request order). The formats are the ones users provide
(components/log_example_gen/schema.py) plus a `truth` log the pipeline never reads.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
from typing import Any

from watchnext.core import log_schema as schema
from watchnext.simulator.policy import RankingPolicy, choose_slates
from watchnext.simulator.responses import draw_requests, draw_responses
from watchnext.simulator.world import World

import numpy as np

# Requests drawn (and ranked) at a time, to bound memory.
_CHUNK_REQUESTS = 20000


def _day_impressions(world: World, day: int, n_impressions: int, policy: RankingPolicy,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All impressions of one day as columns (request-major, slot order), with truth and outcomes."""
    p = world.p
    k = p.slate_size
    n_req = -(-n_impressions // k)
    cols: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_req, _CHUNK_REQUESTS):
        chunk = _requests(world, day, min(_CHUNK_REQUESTS, n_req - start), policy, rng)
        for name, arr in chunk.items():
            cols.setdefault(name, []).append(arr)
    out = {name: np.concatenate(arrs) for name, arrs in cols.items()}
    # Flatten (request, slot) → impression rows, then keep exactly n_impressions.
    flat: dict[str, np.ndarray] = {}
    for name, arr in out.items():
        flat[name] = (arr.reshape(-1, *arr.shape[2:]) if arr.ndim >= 2 and arr.shape[1] == k
                      else np.repeat(arr, k, axis=0))
    flat["request_index"] = np.repeat(np.arange(n_req), k)
    return {name: arr[:n_impressions] for name, arr in flat.items()}



def _requests(world: World, day: int, n: int, policy: RankingPolicy, rng: np.random.Generator
              ) -> dict[str, np.ndarray]:
    """`n` requests ranked by `policy`: per-request columns (n,) and per-slot columns (n, slate_size)."""
    p = world.p
    requests = draw_requests(world, day, n, rng)
    shown, shuffled = choose_slates(requests, policy, p.slate_size, p.shuffle_fraction, rng)
    return {"user": requests.user, "device": requests.device, "query": requests.query,
            "activity": requests.activity, "shuffled": shuffled,
            **draw_responses(requests, shown, rng)}



def _events(imp: dict[str, np.ndarray], timestamps: np.ndarray, rng: np.random.Generator
            ) -> dict[str, np.ndarray]:
    """The event log of a day's impressions, in (impression, event type) order."""
    n = len(timestamps)
    click_ts = timestamps + rng.integers(1, 30, size=n)
    watch_end = click_ts + np.ceil(imp["watch"]).astype(np.int64)
    kinds = [
        (schema.CLICK_EVENT, imp["click"], click_ts, None),
        (schema.WATCH_EVENT, imp["click"], watch_end, imp["watch"]),
        (schema.LIKE_EVENT, imp["like"], click_ts + (0.5 * imp["watch"]).astype(np.int64), None),
        (schema.DISMISS_EVENT, imp["dismiss"], timestamps + rng.integers(1, 60, size=n), None),
        (schema.SURVEY_EVENT, imp["survey"], watch_end + 5, imp["rating"]),
    ]
    index, code, ts, value = [], [], [], []
    for c, (_, mask, when, val) in enumerate(kinds):
        rows = np.flatnonzero(mask)
        index.append(rows)
        code.append(np.full(len(rows), c))
        ts.append(when[rows])
        value.append(val[rows] if val is not None else np.full(len(rows), np.nan))
    index_a, code_a = np.concatenate(index), np.concatenate(code)
    order = np.lexsort((code_a, index_a))
    names = np.array([name for name, *_ in kinds], dtype=object)
    return {"impression": index_a[order], "event": names[code_a[order]],
            "timestamp": np.concatenate(ts)[order], "value": np.concatenate(value)[order]}


def _json_tokens(col: Any) -> list[Any]:
    """A column as JSON tokens for %-formatting: numbers stay numbers (Python prints ints and
    shortest-repr floats as JSON does), NaN becomes null, strings and lists are JSON-encoded
    once per distinct value (ids and per-user histories repeat a lot)."""
    if isinstance(col, np.ndarray) and col.dtype.kind in "iub":
        return col.astype(np.int64).tolist()
    if isinstance(col, np.ndarray) and col.dtype.kind == "f":
        values = col.tolist()
        if np.isnan(col).any():
            return ["null" if v != v else v for v in values]
        return values
    cache: dict[Any, str] = {}
    out = []
    for v in col.tolist() if isinstance(col, np.ndarray) else col:
        key = id(v) if isinstance(v, list) else v
        token = cache.get(key)
        if token is None:
            token = cache[key] = json.dumps(v, separators=(",", ":"))
        out.append(token)
    return out


def _write(path: str, columns: dict[str, Any], start: int, stop: int, log_format: str) -> None:
    """Write rows [start, stop) of `columns` deterministically: gzip'd JSON Lines with mtime 0
    (NaN floats become null), or Parquet (NaN floats become null)."""
    if log_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({name: pa.array(col[start:stop], from_pandas=True) for name, col in columns.items()})
        pq.write_table(table, path)
        return
    # Formatting a template per row is several times faster than json.dumps of a dict per row.
    template = "{" + ",".join(f"{json.dumps(name)}:%s" for name in columns) + "}"
    tokens = [col[start:stop] for col in columns.values()]
    text = "".join(template % row + "\n" for row in zip(*tokens, strict=True))
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                compresslevel=3) as f:
        f.write(text.encode("utf-8"))


def _shard_paths(out_dir: str, log_name: str, span: str, shards: int, log_format: str) -> list[str]:
    folder = os.path.join(out_dir, log_name, f"span={span}")
    os.makedirs(folder, exist_ok=True)
    # Remove shards of an earlier run (maybe with more shards); never other files.
    for name in os.listdir(folder):
        if re.fullmatch(r"part-\d{5}-of-\d{5}\.(jsonl\.gz|parquet)", name):
            os.remove(os.path.join(folder, name))
    ext = "parquet" if log_format == "parquet" else "jsonl.gz"
    return [os.path.join(folder, f"part-{s:05d}-of-{shards:05d}.{ext}") for s in range(shards)]


def write_day(world: World, span: str, day: int, out_dir: str, policy: RankingPolicy,
              rng: np.random.Generator) -> dict[str, Any]:
    """Simulate and write one span; return its counts."""
    p = world.p
    imp = _day_impressions(world, day, p.impressions_per_day, policy, rng)
    n = len(imp["candidate"])
    n_req = int(imp["request_index"][-1]) + 1
    day_start = int(dt.datetime.strptime(span, "%Y%m%d").replace(tzinfo=dt.timezone.utc).timestamp())
    req_ts = day_start + np.sort(rng.integers(0, 86400 - 3600, size=n_req))
    timestamps = req_ts[imp["request_index"]]
    events = _events(imp, timestamps, rng)

    width = len(str(n_req - 1))
    request_ids = np.array([f"{span}-{i:0{width}d}" for i in range(n_req)], dtype=object)
    rid = request_ids[imp["request_index"]]
    cand = world.video_ids[imp["candidate"]]
    user = imp["user"]
    impressions = {
        schema.REQUEST_ID: rid,
        schema.TIMESTAMP: timestamps,
        schema.USER_ID: world.user_ids[user],
        schema.QUERY_VIDEO_ID: world.video_ids[imp["query"]],
        schema.CANDIDATE_VIDEO_ID: cand,
        schema.POSITION: imp["position"],
        schema.DEVICE: np.asarray(p.devices, dtype=object)[imp["device"]],
        schema.COUNTRY: np.asarray(p.countries, dtype=object)[world.user_country[user]],
        schema.VIDEO_DURATION: imp["video_duration"],
        schema.VIDEO_AGE_DAYS: imp["video_age_days"],
        schema.VIDEO_LOG_VIEWS: imp["video_log_views"],
        schema.USER_ACTIVITY: imp["activity"],
        # One list per user, shared by all of that user's rows (not copied per impression).
        schema.WATCH_HISTORY: [world.history_ids[u] for u in user.tolist()],
    }
    truth = {schema.REQUEST_ID: rid, schema.CANDIDATE_VIDEO_ID: cand, schema.POSITION: imp["position"],
             schema.DEVICE: impressions[schema.DEVICE]}
    truth.update({f.name: np.round(imp[f.name], 6) for f in schema.TRUTH_FIELDS
                  if f.name not in truth and f.name != "shuffled"})
    truth["shuffled"] = imp["shuffled"].astype(np.int64)
    ev = events["impression"]
    event_columns = {schema.REQUEST_ID: rid[ev], schema.CANDIDATE_VIDEO_ID: cand[ev],
                     schema.EVENT: events["event"], schema.TIMESTAMP: events["timestamp"],
                     schema.VALUE: np.round(events["value"], 1)}
    # Shards hold whole requests, so a request's impressions, events and truth share a shard index.
    shard_of_request = (np.arange(n_req) * p.shards) // n_req
    imp_shard = shard_of_request[imp["request_index"]]
    files = []
    for log_name, columns, shard in (
        (schema.IMPRESSIONS_LOG, impressions, imp_shard),
        (schema.EVENTS_LOG, event_columns, imp_shard[ev]),
        (schema.TRUTH_LOG, truth, imp_shard),
    ):
        bounds = np.searchsorted(shard, np.arange(p.shards + 1))
        if p.log_format == "jsonl":
            columns = {name: _json_tokens(col) for name, col in columns.items()}
        for s, path in enumerate(_shard_paths(out_dir, log_name, span, p.shards, p.log_format)):
            _write(path, columns, int(bounds[s]), int(bounds[s + 1]), p.log_format)
            files.append(path)
    counts = {schema.EVENTS_LOG + "." + k: int((events["event"] == k).sum()) for k in schema.EVENT_TYPES}
    return {"span": span, "requests": n_req, "impressions": n, "events": len(ev),
            **counts, "shuffled_requests": int(np.unique(imp["request_index"][imp["shuffled"]]).size),
            "ctr": float(imp["click"].mean()), "files": files}

