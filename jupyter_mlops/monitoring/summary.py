"""What the monitoring panel draws, aggregated here so the browser never receives raw
rows: traffic per time bucket, reference-vs-current distributions, and the history of
checks (drift share and performance over time)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import sqlalchemy as sa

from ..store import Store, current_store, schema

__all__ = ["check_history", "distributions", "traffic"]


def traffic(name: str, *, since: float | None = None, store: Store | None = None) -> Any:
    """Requests, rows and latency (p50, p95 ms) per time bucket (about 60 buckets)."""
    import pandas as pd

    from ..serving.inference_log import online_table

    table = online_table(
        name, since=since, columns=["request_id", "time", "latency_ms"], store=store
    )
    columns = ["bucket", "rows", "p50_ms", "p95_ms"]
    if not table.num_rows:
        return pd.DataFrame(columns=columns)
    times = table.column("time").to_numpy()
    latency = table.column("latency_ms").to_numpy()
    lo, hi = float(times.min()), float(times.max())
    width = max((hi - lo) / 60.0, 1.0)
    index = ((times - lo) // width).astype(np.int64)
    frame = pd.DataFrame({"b": index, "latency": latency})
    grouped = frame.groupby("b")["latency"]
    out = pd.DataFrame(
        {
            "bucket": pd.to_datetime(lo + grouped.size().index.to_numpy() * width, unit="s"),
            "rows": grouped.size().to_numpy(),
            "p50_ms": grouped.median().to_numpy(),
            "p95_ms": grouped.quantile(0.95).to_numpy(),
        }
    )
    return out


def distributions(reference: Any, current: Any, columns: list[str], bins: int = 20) -> Any:
    """Shares per bin (numeric: common bins over the reference's 1st–99th percentile,
    open at both ends) or per category (the 10 most frequent, the rest as "(other)"),
    for each column and side, as one long frame."""
    import pandas as pd

    parts = []
    for col in columns:
        if col not in reference or col not in current:
            continue
        ref, cur = reference[col], current[col]
        if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
            r = pd.to_numeric(ref, errors="coerce").dropna().to_numpy(dtype=float)
            c = pd.to_numeric(cur, errors="coerce").dropna().to_numpy(dtype=float)
            if not len(r) or not len(c):
                continue
            lo, hi = np.percentile(r, [1, 99])
            if hi <= lo:
                lo, hi = float(r.min()) - 0.5, float(r.max()) + 0.5
            edges = np.linspace(lo, hi, bins + 1)
            inner = edges[1:-1]
            rc = np.bincount(np.searchsorted(inner, r), minlength=bins) / len(r)
            cc = np.bincount(np.searchsorted(inner, c), minlength=bins) / len(c)
            centers = (edges[:-1] + edges[1:]) / 2
            for side, shares in (("reference", rc), ("current", cc)):
                parts.append(
                    pd.DataFrame(
                        {
                            "column": col,
                            "kind": "numeric",
                            "value": centers,
                            "label": [f"{v:.4g}" for v in centers],
                            "side": side,
                            "share": shares,
                            "order": np.arange(bins),
                        }
                    )
                )
        else:
            r, c = ref.dropna().astype(str), cur.dropna().astype(str)
            top = list(r.value_counts().index[:10])
            for side, values in (("reference", r), ("current", c)):
                counts = values.value_counts()
                shares = [counts.get(k, 0) / max(len(values), 1) for k in top]
                other = 1.0 - sum(shares) if len(values) else 0.0
                labels = [*top, "(other)"]
                parts.append(
                    pd.DataFrame(
                        {
                            "column": col,
                            "kind": "categorical",
                            "value": np.nan,
                            "label": labels,
                            "side": side,
                            "share": [*shares, max(other, 0.0)],
                            "order": np.arange(len(labels)),
                        }
                    )
                )
    if not parts:
        return pd.DataFrame(columns=["column", "kind", "value", "label", "side", "share", "order"])
    return pd.concat(parts, ignore_index=True)


def check_history(name: str, *, limit: int = 500, store: Store | None = None) -> Any:
    """The recorded checks of ``name``: time, state, rows, drift share, the share of requests
    refused, and the performance metrics of each."""
    import pandas as pd

    store = store or current_store()
    if not store.exists:
        return pd.DataFrame(columns=["time", "state", "rows", "drift_share"])
    mc = schema.monitor_checks
    with store.read() as conn:
        rows = list(
            conn.execute(
                sa.select(mc).where(mc.c.model_name == name).order_by(mc.c.time.desc()).limit(limit)
            )
        )
    records = []
    for r in reversed(rows):
        summary = json.loads(r.summary) if r.summary else {}
        records.append(
            {
                "time": pd.Timestamp(r.time, unit="s"),
                "state": r.state,
                "rows": r.rows,
                "drift_share": r.drift_share,
                "rejection_rate": (summary.get("rejections") or {}).get("rate"),
                **{k: v for k, v in (summary.get("performance") or {}).items()},
            }
        )
    return pd.DataFrame(
        records, columns=None if records else ["time", "state", "rows", "drift_share"]
    )
