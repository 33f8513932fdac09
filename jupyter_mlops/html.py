"""Rich HTML for notebook displays (plain strings: no IPython or widget imports)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from .errors import MlopsError

__all__ = [
    "CardList",
    "RunFields",
    "format_value",
    "gate_lines_html",
    "metric_curves",
    "monitor_config_card",
    "run_card",
    "sample_curve",
    "sparkline",
]


class RunFields(Protocol):
    """What a run card is drawn from: plain fields (a tracking ``Run`` has them), so this
    bottom layer imports nothing from the services that render with it."""

    run_id: str
    name: str
    experiment: str
    status: str
    start_time: float
    duration_s: float | None
    params: dict[str, Any]
    default_params: Any
    metrics: dict[str, Any]
    tags: dict[str, str]
    inputs: list[dict[str, Any]]
    models: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]
    children: list[Any]
    error: str | None


_REGISTER_ERROR_TAG = "mlops.register_error"  # tracking.writer.REGISTER_ERROR_TAG
_NOT_SAVED_TAG = "mlops.model_not_saved."  # tracking.writer.MODEL_NOT_SAVED_TAG + "."
_STATUS_COLORS = {
    "finished": "#1a7f37",
    "running": "#0969da",
    "failed": "#cf222e",
    "interrupted": "#9a6700",
    "killed": "#8250df",
}
_STYLE = """
<style>
.mlops-card{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:12px;
 border:1px solid var(--jp-border-color2,#d0d7de);border-radius:6px;padding:8px 10px;margin:4px 0;
 max-width:900px;overflow-x:auto;color:var(--jp-ui-font-color1,#1f2328);
 background:var(--jp-layout-color1,#fff)}
.mlops-card .hd{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
.mlops-card .nm{font-weight:600;font-size:13px}
.mlops-card .badge{color:#fff;border-radius:10px;padding:0 7px;font-size:11px}
.mlops-card .mut{color:var(--jp-ui-font-color2,#656d76)}
.mlops-card .grid{display:flex;gap:18px;flex-wrap:wrap;margin-top:6px}
.mlops-card table{border-collapse:collapse;font-size:12px}
.mlops-card td,.mlops-card th{padding:1px 8px 1px 0;text-align:left;vertical-align:top}
.mlops-card th{font-weight:600;color:var(--jp-ui-font-color2,#656d76);font-size:11px}
.mlops-card code{font-size:11px}
.mlops-card .err{color:#cf222e;white-space:pre-wrap;margin-top:6px}
</style>
"""


def format_value(value: Any) -> str:
    """A param or metric value, short and readable."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.6g}"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _table(
    title: str, rows: list[tuple[str, str]], limit: int = 12, folded: frozenset[str] = frozenset()
) -> str:
    """A titled key/value table: the first ``limit`` rows, the rest under "N more"; rows
    whose key is in ``folded`` (the params left at their defaults) under "N defaults"."""
    if not rows:
        return ""
    esc = html.escape

    def body(items: list[tuple[str, str]]) -> str:
        return "".join(
            f"<tr><td>{esc(k)}</td><td><code>{esc(v)}</code></td></tr>" for k, v in items
        )

    def fold(label: str, items: list[tuple[str, str]]) -> str:
        if not items:
            return ""
        return (
            f"<details><summary class=mut>{label}</summary><table>{body(items)}</table></details>"
        )

    shown = [r for r in rows if r[0] not in folded]
    defaults = [r for r in rows if r[0] in folded]
    return (
        f"<div><table><tr><th colspan=2>{esc(title)} ({len(rows)})</th></tr>{body(shown[:limit])}</table>"
        + fold(f"{len(shown) - limit} more", shown[limit:])
        + fold(f"{len(defaults)} default{'s' if len(defaults) > 1 else ''}", defaults)
        + "</div>"
    )


_SPARK_W, _SPARK_H, _SPARK_PAD = 160, 40, 3


def sample_curve(
    steps: Sequence[float], values: Sequence[float | None], points: int = _SPARK_W
) -> tuple[list[tuple[float, float]], int]:
    """(sample, n): at most ``points`` of the finite ``(step, value)`` pairs, spread evenly
    over the curve with its minimum, maximum and last value always among them, and how
    many finite pairs there are: all a sparkline can show of a curve of any length."""
    isfinite = math.isfinite
    if all(v is not None and isfinite(v) for v in values):
        xs, ys = steps, values
    else:
        kept = [(x, y) for x, y in zip(steps, values, strict=True) if y is not None and isfinite(y)]
        xs, ys = [x for x, _ in kept], [y for _, y in kept]
    n = len(ys)
    if n <= points:
        return [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)], n  # type: ignore[arg-type]
    slots = max(2, points - 3)  # min, max and last may fall between the even steps
    keep = {round(i * (n - 1) / (slots - 1)) for i in range(slots)}
    keep |= {ys.index(min(ys)), ys.index(max(ys)), n - 1}  # type: ignore[type-var]
    return [(float(xs[i]), float(ys[i])) for i in sorted(keep)], n  # type: ignore[arg-type]


def sparkline(
    points: list[tuple[float, float]], label: str = "", *, steps: int | None = None
) -> str:
    """A small static SVG curve (160×40) of ``(step, value)`` points, with min, max and last
    beside it: inline, no script and no external resource, so a saved notebook shows it.
    Non-finite values are left out of the line; fewer than two finite points draw nothing.
    ``steps``: how many points the whole curve has, when ``points`` is a sample of it."""
    finite = [(float(x), float(y)) for x, y in points if math.isfinite(y) and math.isfinite(x)]
    if len(finite) < 2:
        return ""
    count = steps if steps is not None else len(finite)
    values = [y for _, y in finite]
    steps = [x for x, _ in finite]
    xs = steps if max(steps) > min(steps) else [float(i) for i in range(len(finite))]
    if len(finite) > _SPARK_W:  # one point per pixel is all a sparkline can show
        keep = sorted({round(i * (len(finite) - 1) / (_SPARK_W - 1)) for i in range(_SPARK_W)})
        xs, values_shown = [xs[i] for i in keep], [values[i] for i in keep]
    else:
        values_shown = values
    lo, hi = min(values), max(values)
    x0, x1 = min(xs), max(xs)
    width, height = _SPARK_W - 2 * _SPARK_PAD, _SPARK_H - 2 * _SPARK_PAD

    def at(x: float, y: float) -> str:
        px = _SPARK_PAD + (x - x0) / (x1 - x0) * width
        py = _SPARK_PAD + (0.5 if hi == lo else (hi - y) / (hi - lo)) * height
        return f"{px:.1f},{py:.1f}"

    line = " ".join(at(x, y) for x, y in zip(xs, values_shown, strict=True))
    last_x, last_y = at(xs[-1], values_shown[-1]).split(",")
    name = html.escape(label)
    svg = (
        f"<svg class=mlops-spark width={_SPARK_W} height={_SPARK_H} "
        f"viewBox='0 0 {_SPARK_W} {_SPARK_H}' role=img "
        f"aria-label='{name} over {count} steps' xmlns='http://www.w3.org/2000/svg'>"
        f"<title>{name}: {count} steps</title>"
        f"<polyline points='{line}' fill=none stroke='#0969da' stroke-width=1.5 "
        "stroke-linejoin=round stroke-linecap=round />"
        f"<circle cx={last_x} cy={last_y} r=2 fill='#0969da' /></svg>"
    )
    labels = (
        f"<span class=mut>min</span> {html.escape(format_value(lo))} "
        f"<span class=mut>max</span> {html.escape(format_value(hi))} "
        f"<span class=mut>last</span> {html.escape(format_value(values[-1]))}"
    )
    return (
        "<div class=mlops-curve style='display:flex;gap:8px;align-items:center'>"
        f"{svg}<div style='font-size:11px;line-height:1.35'>{labels}</div></div>"
    )


def metric_curves(run: Any) -> dict[str, list[tuple[float, float]]]:
    """{metric: [(step, value), ...]} for the metrics a run logged at two or more points,
    read through the run's ``metric_history`` (runs drawn from plain fields have none)."""
    return _read_curves(run)[0]


def _read_curves(run: Any) -> tuple[dict[str, list[tuple[float, float]]], dict[str, int]]:
    """The curves a card draws and how many points each has: a stored run's are sampled
    by the database (``Run.metric_curve``), so a long curve costs what a short one does."""
    sampled = getattr(run, "metric_curve", None)
    history = getattr(run, "metric_history", None)
    if sampled is None and history is None:
        return {}, {}
    known = getattr(run, "known_curves", None) or {}
    out: dict[str, list[tuple[float, float]]] = {}
    counts: dict[str, int] = {}
    for key in sorted(run.metrics):
        try:
            if key in known:  # handed over by whoever recorded it: no read back
                points, n = known[key]
            elif sampled is not None:
                points, n = sampled(key, _SPARK_W)
            else:
                frame = history(key)
                points = list(zip(frame["step"].tolist(), frame["value"].tolist(), strict=True))
                n = len(points)
        except (MlopsError, OSError):  # the card still shows what the run holds in memory
            continue
        if n >= 2:
            out[key], counts[key] = points, n
    return out, counts


def _curves_html(
    curves: dict[str, list[tuple[float, float]]], counts: dict[str, int] | None = None
) -> str:
    """The card's curves section: one sparkline per stepped metric."""
    counts = counts or {}
    drawn = [(k, sparkline(v, k, steps=counts.get(k))) for k, v in curves.items()]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{svg}</td></tr>" for k, svg in drawn if svg)
    if not rows:
        return ""
    n = rows.count("<tr>")
    return f"<div><table><tr><th colspan=2>curves ({n})</th></tr>{rows}</table></div>"


def run_card(run: RunFields, curves: dict[str, list[tuple[float, float]]] | None = None) -> str:
    """The compact card shown under a tracked cell: status, params, metrics, data, models,
    and a small curve for every metric logged at several steps (``curves``: {metric:
    [(step, value)]}; by default read from the run's ``metric_history``)."""
    esc = html.escape
    counts = None
    if curves is None:
        curves, counts = _read_curves(run)
    color = _STATUS_COLORS.get(run.status, "#57606a")
    started = datetime.fromtimestamp(run.start_time, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    params = [(k, format_value(v)) for k, v in run.params.items()]
    metrics = [(k, format_value(v)) for k, v in run.metrics.items()]
    data = [
        (
            f"{i['name']}" + (" (output)" if i["role"] == "output" else ""),
            f"{i['kind']} {'×'.join(map(str, i['shape']))} #{i['content_hash'][:10]}",
        )
        for i in run.inputs
    ]
    models = [
        (
            m["name"],
            f"{m.get('class', '').rsplit('.', 1)[-1]} · {m['format']} · "
            f"{len(m.get('signature', {}).get('inputs', []))} inputs · {m['size'] / 1024:.1f} KiB",
        )
        for m in run.models
    ]
    figures = [a for a in run.artifacts if a["kind"] == "figure"]
    extras = []
    if figures:
        extras.append(f"{len(figures)} figure{'s' if len(figures) > 1 else ''}")
    if run.children:
        extras.append(f"{len(run.children)} child runs")
    tags = {
        k: v
        for k, v in run.tags.items()
        if k != _REGISTER_ERROR_TAG and not k.startswith(_NOT_SAVED_TAG)
    }
    if tags:
        extras.append(", ".join(f"{k}={v}" for k, v in tags.items()))
    error = ""
    if run.error:
        last = run.error.strip().splitlines()[-1]
        error = f"<div class=err>{esc(last)}</div>"
    for key, why in run.tags.items():  # a model the cell fitted, not saved: why
        if key.startswith(_NOT_SAVED_TAG):
            name = key[len(_NOT_SAVED_TAG) :]
            error += f"<div class=err>model {esc(name)} not saved: {esc(why)}</div>"
    if run.tags.get(_REGISTER_ERROR_TAG):  # `%%track --register` that did not register
        error += f"<div class=err>{esc(run.tags[_REGISTER_ERROR_TAG])}</div>"
    return (
        _STYLE
        + "<div class=mlops-card>"
        + "<div class=hd>"
        + f"<span class=nm>{esc(run.name)}</span>"
        + f"<span class=badge style='background:{color}'>{esc(run.status)}</span>"
        + f"<span class=mut>run <code>{esc(run.run_id[:8])}</code> · {esc(run.experiment)} · "
        + f"{esc(started)} · {_duration(run.duration_s)}</span>"
        + (f"<span class=mut>{esc(' · '.join(extras))}</span>" if extras else "")
        + "</div><div class=grid>"
        + _table("metrics", metrics)
        + _curves_html(curves, counts)
        + _table("params", params, folded=run.default_params)
        + _table("data", data)
        + _table("models", models)
        + "</div>"
        + error
        + "</div>"
    )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def data_version_card(version: Any) -> str:
    """A data version: reference, hash, shape, size, and its columns with statistics."""
    esc = html.escape
    created = (
        datetime.fromtimestamp(version.created, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    )
    rows = []
    for name, dtype in version.schema:
        stat = version.stats.get(name, {}) if isinstance(version.stats, dict) else {}
        parts = [dtype]
        if stat.get("nulls"):
            parts.append(f"{stat['nulls']} null")
        if stat.get("min") is not None and stat.get("max") is not None:
            parts.append(f"{format_value(stat['min'])} … {format_value(stat['max'])}")
        if stat.get("mean") is not None:
            parts.append(f"mean {format_value(stat['mean'])}")
        if stat.get("unique") is not None:
            parts.append(f"{stat['unique']} distinct")
        rows.append((str(name), " · ".join(parts)))
    dims = "×".join(str(d) for d in version.shape)
    written = "no new bytes" if version.new_bytes == 0 else f"{_size(version.new_bytes)} new"
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>{esc(version.ref)}</span>"
        + f"<span class=mut><code>#{esc(version.content_hash[:12])}</code> · {esc(version.kind)} {dims} · "
        + f"{_size(version.size_bytes)} ({written}) · {esc(created)}</span>"
        + "</div><div class=grid>"
        + _table("columns", rows, limit=15)
        + "</div></div>"
    )


def data_diff_card(diff: Any) -> str:
    """The rich display of a ``DataDiff``: counts, schema changes, statistic changes, samples."""
    esc = html.escape
    if diff.identical:
        summary = "identical content"
    elif diff.rows.get("added") is None:
        summary = (
            f"rows {diff.rows['a']} → {diff.rows['b']} · rows not stored (recorded by content "
            "hash, schema and statistics): compare the statistics"
        )
    else:
        r = diff.rows
        summary = (
            f"rows {r['a']} → {r['b']} · +{r['added']} added · −{r['removed']} removed · "
            f"{r['changed']} changed"
        )
    schema_rows = (
        [(c, f"added ({t})") for c, t in diff.schema["added"]]
        + [(c, f"removed ({t})") for c, t in diff.schema["removed"]]
        + [(c, f"{old} → {new}") for c, old, new in diff.schema["retyped"]]
    )
    stat_rows = [
        (
            column,
            ", ".join(
                f"{k} {format_value(a)} → {format_value(b)}" for k, (a, b) in changes.items()
            ),
        )
        for column, changes in diff.stats.items()
    ]
    samples = ""
    for kind in ("added", "removed", "changed"):
        frame = diff.samples.get(kind)
        if frame is not None and len(frame):
            samples += f"<div><b>{kind}</b> (sample){frame.to_html(max_cols=12, border=0)}</div>"
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>{esc(diff.a)} → {esc(diff.b)}</span>"
        + f"<span class=mut>{esc(summary)}</span></div><div class=grid>"
        + _table("schema changes", schema_rows)
        + _table("statistics changed", stat_rows)
        + "</div>"
        + samples
        + "</div>"
    )


def model_version_card(mv: Any) -> str:
    """A registered model version: reference, aliases, source run, data and key metrics."""
    esc = html.escape
    created = datetime.fromtimestamp(mv.created, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    badges = "".join(
        f"<span class=badge style='background:#0969da'>{esc(a)}</span> " for a in mv.aliases
    )
    if mv.archived:
        badges += "<span class=badge style='background:#57606a'>archived</span>"
    metrics = [(k, format_value(v)) for k, v in sorted(mv.metrics.items())]
    data = [
        (
            d["name"],
            f"{d.get('ref') or '#' + d['content_hash'][:12]} · {'×'.join(map(str, d.get('shape', [])))}",
        )
        for d in mv.data
    ]
    inputs = mv.signature.get("inputs", [])
    signature = [(c["name"], c.get("dtype", "?")) for c in inputs]
    flavor = (mv.flavor or "model").rsplit(".", 1)[-1]
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>{esc(mv.ref)}</span>{badges}"
        + f"<span class=mut>{esc(flavor)} · run <code>{esc(mv.run_id[:8])}</code> · {esc(created)}"
        + f" · {esc(mv.created_by or '')}</span></div>"
        + (f"<div class=mut>{esc(mv.description)}</div>" if mv.description else "")
        + "<div class=grid>"
        + _table("metrics", metrics, limit=8)
        + _table("trained on", data)
        + _table("signature", signature, limit=6)
        + "</div></div>"
    )


_STATUS_COLOR = {
    "running": "#1a7f37",
    "starting": "#9a6700",
    "unhealthy": "#bc4c00",
    "dead": "#cf222e",
    "failed": "#cf222e",
    "stopped": "#57606a",
}


def deployment_card(d: Any) -> str:
    """A deployment: model version, URL, live status, request count and a curl example."""
    esc = html.escape
    color = _STATUS_COLOR.get(d.state, "#57606a")
    version = f"{d.model_name}@{d.version}" if d.version is not None else d.model_name
    started = (
        datetime.fromtimestamp(d.started, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        if d.started
        else "not started"
    )
    rows = [
        ("serves", f"{version} (follows {d.reference})" if "@" in d.reference else version),
        ("url", d.url if d.port else "—"),
        ("requests logged", f"{d.requests:,}"),
        ("workers", str(d.workers)),
        ("pid", str(d.pid or "—")),
        ("started", started),
    ]
    token = ""
    if d.token:
        token = (
            "<div class=mut><b>Bearer token, shown once; store it now:</b> "
            f"<code>{esc(d.token)}</code></div>"
        )
    message = f"<div class=mut>{esc(d.message)}</div>" if d.message else ""
    try_it = (  # a stopped or failed deployment answers nothing: no command to try
        f"<div class=mut>Try it:</div><pre style='white-space:pre-wrap'>{esc(d.curl())}</pre>"
        if d.state in _ANSWERING
        else ""
    )
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>{esc(d.deployment_id)}</span>"
        + f"<span class=badge style='background:{color}'>{esc(d.state)}</span>"
        + f"<span class=mut>{esc(d.reference)}</span></div>"
        + message
        + token
        + "<div class=grid>"
        + _table("deployment", rows)
        + "</div>"
        + try_it
        + "</div>"
    )


_ANSWERING = ("running", "starting", "unhealthy")


class CardList(list):  # type: ignore[type-arg]
    """A list of objects that each draw a card (deployments, ...): it displays as a line
    saying what it holds, then their cards, instead of a list of reprs. Still a list:
    iterate, index, ``len``."""

    def __init__(self, items: Any = (), title: str = "") -> None:
        super().__init__(items)
        self.title = title

    def _repr_html_(self) -> str:
        esc = html.escape
        head = f"<div class=mut style='margin:2px 0'>{esc(self.title)}</div>" if self.title else ""
        cards = "".join(
            item._repr_html_() if hasattr(item, "_repr_html_") else f"<pre>{esc(repr(item))}</pre>"
            for item in self
        )
        return head + (cards or "<div class=mut>Nothing.</div>")

    def __repr__(self) -> str:
        inner = "\n".join(f"  {item!r}" for item in self)
        title = f"{self.title}\n" if self.title else ""
        return f"{title}[\n{inner}\n]" if inner else f"{title}[]"


def monitor_config_card(config: Any, callback: str | None = None) -> str:
    """What a monitor watches and when it alerts: the model, the window, the metric checks,
    the drift thresholds (the ones set marked), the reference data, where alerts go, and
    how often the server extension checks it (``callback``: the alert callback's name)."""
    esc = html.escape
    window = (
        f"the last {config.window:,} predictions"
        if isinstance(config.window, int)
        else f"the last {config.window}"
    )
    judged = [
        ("window", f"{window}, judged once it holds {config.min_rows:,} rows"),
        ("reference data", config.data or "the model version's training data"),
        ("checked every", str(config.every) + " (by the server extension; mlops.check() now)"),
    ]
    checks = [(str(i + 1), c) for i, c in enumerate(config.checks)] or [("–", "none set")]
    given = dict(config.thresholds)
    thresholds = [
        (k, format_value(v) + ("" if k in given else " (default)"))
        for k, v in config.effective_thresholds().items()
    ]
    alerts = [("stored", "mlops.alerts(), the monitoring panel, the sidebar")]
    if config.webhook:
        alerts.append(("webhook", config.webhook))
    if callback:
        alerts.append(("callback", callback))
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>Monitor of {esc(config.reference)}</span>"
        + "<span class=badge style='background:#1a7f37'>set</span>"
        + f"<span class=mut>{len(config.checks)} metric check"
        + ("" if len(config.checks) == 1 else "s")
        + f" · {len(given)} threshold"
        + ("" if len(given) == 1 else "s")
        + " set</span></div><div class=grid>"
        + _table("judges", judged)
        + _table("metric checks", checks)
        + _table("drift thresholds", thresholds)
        + _table("alerts go to", alerts)
        + "</div></div>"
    )


DRIFT_COLORS = {
    "dataset drift": "#cf222e",
    "features drifted": "#bc4c00",
    "no drift": "#1a7f37",
    "not enough data": "#57606a",
}


def drift_report_card(report: Any) -> str:
    """A drift report: the verdict, then one row per column (drifted first)."""
    esc = html.escape
    verdict, sentence = report.verdict()
    color = DRIFT_COLORS[verdict]
    frame = report.to_frame()
    rows = []
    for r in frame.itertuples():
        color = {"drifted": "#cf222e", "ok": "#1a7f37"}.get(r.status, "#57606a")
        score = "—" if r.score is None or r.score != r.score else f"{r.score:.3f}"
        pvalue = "—" if r.pvalue is None or r.pvalue != r.pvalue else f"{r.pvalue:.2g}"
        notes = "; ".join(next(c for c in report.columns if c.column == r.column).notes)
        rows.append(
            f"<tr><td>{esc(r.column)}</td><td>{esc(r.kind)}</td><td>{esc(r.test)}</td>"
            f"<td style='text-align:right'>{score}</td><td style='text-align:right'>{pvalue}</td>"
            f"<td><span class=badge style='background:{color}'>{esc(r.status)}</span></td>"
            f"<td class=mut>{esc(notes)}</td></tr>"
        )
    mismatch = ""
    if report.missing_in_current or report.new_in_current:
        mismatch = (
            "<div class=mut>Columns only in the reference: "
            f"{esc(', '.join(report.missing_in_current) or 'none')}; only in the current data: "
            f"{esc(', '.join(report.new_in_current) or 'none')} (left out).</div>"
        )
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>Drift report</span><span class=badge style='background:{color}'>"
        + f"{esc(verdict)}</span><span class=mut>{esc(sentence)} · {report.ref_rows:,} "
        + f"reference rows · {report.cur_rows:,} current rows</span></div>"
        + mismatch
        + "<table><tr><th>column</th><th>kind</th><th>test</th><th>PSI</th><th>p-value</th>"
        + "<th>verdict</th><th>notes</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


def check_outcome_card(outcome: Any) -> str:
    """A monitor check: state, window, performance against training, checks, alerts."""
    esc = html.escape
    color = {"ok": "#1a7f37", "alert": "#cf222e"}.get(outcome.state, "#57606a")
    perf = [
        (
            k,
            format_value(v)
            + (
                f" (training {format_value(outcome.training_metrics[k])})"
                if k in outcome.training_metrics
                else ""
            ),
        )
        for k, v in outcome.performance.items()
    ]
    checks = [
        (r.check, f"SKIP ({r.reason})" if r.skipped and r.reason else r.line.split(" ", 1)[0])
        for r in outcome.checks
    ]
    alerts = [(a["kind"], a["message"]) for a in outcome.open_alerts]
    refused = getattr(outcome, "rejections", None)
    rejections = []
    if refused is not None:
        rejections = [("refused", refused.line())] + [
            (reason, f"{count:,}") for reason, count in refused.top(5)
        ]
    body = outcome.report._repr_html_() if outcome.report is not None else ""
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>{esc(outcome.model)}@{outcome.version}</span>"
        + f"<span class=badge style='background:{color}'>{esc(outcome.state)}</span>"
        + f"<span class=mut>{outcome.rows:,} predictions in the window</span></div>"
        + "<div class=grid>"
        + _table("performance", perf)
        + _table("checks", checks)
        + _table("rejections", rejections)
        + _table("open alerts", alerts)
        + "</div></div>"
        + body
    )


def gate_card(result: Any) -> str:
    """A gate: verdict, each line, and the two models' scores on the holdout."""
    esc = html.escape
    color = "#1a7f37" if result.passed else "#cf222e"
    holdout = result.holdout or {}
    where = (
        f"holdout {esc(holdout['ref'])} · {holdout['rows']:,} rows"
        + (
            f" ({holdout['excluded']:,} seen in training left out)"
            if holdout.get("excluded")
            else ""
        )
        if holdout
        else "no holdout"
    )
    metrics = sorted({m for s in result.scores.values() for m in s})
    scores = [
        (m, " · ".join(
            f"{who} {result.scores[who][m]:.4f}"
            for who in ("challenger", "champion")
            if m in result.scores.get(who, {})
        ))
        for m in metrics
    ]  # fmt: skip
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd><span class=nm>Gate</span>"
        + f"<span class=badge style='background:{color}'>"
        + ("passed" if result.passed else "failed")
        + f"</span><span class=mut>{esc(result.challenger)} vs "
        + f"{esc(result.champion or 'no champion')} · {where}</span></div>"
        + gate_lines_html(result)
        + (f"<div class=grid>{_table('scores on the holdout', scores)}</div>" if scores else "")
        + "</div>"
    )


def job_card(job: Any) -> str:
    """A retraining job: status, trigger, champion → challenger, steps, gate, outcome."""
    import datetime as dt

    esc = html.escape
    color = {"finished": "#1a7f37" if job.promoted else "#57606a", "failed": "#cf222e"}.get(
        job.status, "#0969da"
    )
    label = "promoted" if job.promoted else job.status
    steps = [
        (
            dt.datetime.fromtimestamp(s["time"]).strftime("%H:%M:%S"),
            f"{s['step']}: {s.get('detail', '')}",
        )
        for s in job.steps
    ]
    facts = [
        ("trigger", job.trigger + (f" (+{len(job.triggers) - 1} merged)" if len(job.triggers) > 1 else "")),
        ("champion", job.champion or "none yet"),
        ("challenger", job.challenger or "—"),
        ("run", (job.run_id or "—")[:8]),
        ("duration", _duration((job.ended or job.started or 0) - (job.started or 0)) if job.started else "—"),
    ]  # fmt: skip
    error = f"<div class=mut style='color:#cf222e'>{esc(job.error)}</div>" if job.error else ""
    gate = job.gate._repr_html_() if job.gate is not None else ""
    return (
        _STYLE
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>{esc(job.kind)} job {esc(job.job_id[:8])} · {esc(job.model)}</span>"
        + f"<span class=badge style='background:{color}'>{esc(label)}</span></div>"
        + error
        + "<div class=grid>"
        + _table("job", facts)
        + _table("steps", steps, limit=20)
        + "</div></div>"
        + gate
    )


def gate_lines_html(result: Any) -> str:
    """A gate's lines (``.status``, ``.check``, ``.detail``) as an HTML list: the gate card,
    the job card and the CI summary share it."""
    colors = {
        "PASS": "var(--jp-success-color1, #2e7d32)",
        "FAIL": "var(--jp-error-color1, #c62828)",
    }
    items = "".join(
        f"<li><b style='color:{colors.get(line.status, 'inherit')}'>{line.status}</b> "
        f"{html.escape(line.check)}"
        + (f" <span style='opacity:.7'>({html.escape(line.detail)})</span>" if line.detail else "")
        + "</li>"
        for line in result.lines
    )
    return f"<ul style='margin:4px 0;padding-left:18px'>{items}</ul>"
