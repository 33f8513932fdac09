"""Drift reports: how the current data differs from a reference, per feature and overall.

Each column gets the tests that fit its type, named in the report, and a stated rule for
"drifted". Significance alone flags everything at a million rows, so the default rule
needs both a small p-value and an effect size above its threshold:

- numeric: KS p-value < ``ks_pvalue`` and (PSI >= ``psi`` or Wasserstein / reference
  standard deviation >= ``wasserstein``);
- categorical: chi-square p-value < ``chi2_pvalue`` and (PSI >= ``psi`` or Jensen–Shannon
  distance >= ``jensen_shannon``).

The dataset drifts when at least ``drift_share`` of the evaluated columns drift. Columns
with fewer than ``min_rows`` values on either side are "not enough data", never drifted.
New categories, a change in the share of missing values, and values outside the
reference's range are reported as data quality, beside the drift.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ValidationError
from .stats import CategoricalStats, NumericStats, categorical_stats, numeric_stats

__all__ = [
    "ColumnDrift",
    "DriftReport",
    "Thresholds",
    "categorical_drifted",
    "drift_report",
    "numeric_drifted",
]

MAX_CATEGORIES = 100  # more distinct values are capped: the rarest fold into "(other)"
OTHER = "(other)"


@dataclass(frozen=True)
class Thresholds:
    """The default rule's thresholds (each test has its own)."""

    ks_pvalue: float = 0.001
    chi2_pvalue: float = 0.001
    psi: float = 0.1
    wasserstein: float = 0.1
    jensen_shannon: float = 0.1
    drift_share: float = 0.5
    missing_share: float = 0.05
    rejection_rate: float = 0.05  # the share of requests refused that raises an alert

    @classmethod
    def of(cls, given: Thresholds | dict[str, float] | None) -> Thresholds:
        """Defaults overridden by a dict such as ``{"psi": 0.2}``."""
        if given is None or isinstance(given, Thresholds):
            return given or cls()
        if not isinstance(given, dict):
            raise ValidationError("thresholds is a dict such as {'psi': 0.2, 'ks_pvalue': 0.05}.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValidationError(
                f"Unknown thresholds {unknown}; known: {', '.join(sorted(known))}."
            )
        for key, value in given.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValidationError(f"Threshold {key} must be a non-negative number.")
        return replace(cls(), **{k: float(v) for k, v in given.items()})


@dataclass
class ColumnDrift:
    """One column's verdict: its kind, the tests run, their values and the rule applied."""

    column: str
    kind: str  # numeric | categorical
    status: str  # drifted | ok | not enough data | no data | identifier-like
    drifted: bool | None
    test: str
    score: float | None  # PSI: the severity the report sorts by
    pvalue: float | None
    stats: dict[str, float] = field(default_factory=dict)
    rule: str = ""
    ref_rows: int = 0
    cur_rows: int = 0
    missing_ref: float = 0.0
    missing_cur: float = 0.0
    new_categories: list[Any] = field(default_factory=list)
    new_share: float = 0.0
    out_of_range: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class DriftReport:
    """A drift report between a reference and a current frame."""

    columns: list[ColumnDrift]
    thresholds: Thresholds
    ref_rows: int
    cur_rows: int
    missing_in_current: list[str] = field(default_factory=list)
    new_in_current: list[str] = field(default_factory=list)
    min_rows: int = 30
    prediction: ColumnDrift | None = None

    @property
    def evaluated(self) -> list[ColumnDrift]:
        """Columns with a verdict (enough data on both sides)."""
        return [c for c in self.columns if c.drifted is not None]

    @property
    def drifted(self) -> list[str]:
        """Names of the drifted columns, most severe first."""
        ranked = sorted(self.evaluated, key=lambda c: -(c.score or 0.0))
        return [c.column for c in ranked if c.drifted]

    @property
    def share(self) -> float:
        """Share of evaluated columns that drifted."""
        return len(self.drifted) / len(self.evaluated) if self.evaluated else 0.0

    @property
    def dataset_drift(self) -> bool | None:
        """True when at least ``drift_share`` of the evaluated columns drifted; None when
        no column had enough data."""
        if not self.evaluated:
            return None
        return self.share >= self.thresholds.drift_share

    def to_frame(self) -> Any:
        """One row per column (drifted first, by severity): test, score, p-value, verdict
        and the data-quality figures."""
        import pandas as pd

        rows = []
        for c in self.columns:
            rows.append(
                {
                    "column": c.column,
                    "kind": c.kind,
                    "test": c.test,
                    "score": c.score,
                    "pvalue": c.pvalue,
                    "drifted": c.drifted,
                    "status": c.status,
                    **{k: c.stats.get(k) for k in _STAT_COLUMNS},
                    "missing_ref": c.missing_ref,
                    "missing_cur": c.missing_cur,
                    "new_categories": len(c.new_categories),
                    "out_of_range": c.out_of_range,
                    "rule": c.rule,
                }
            )
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        order = frame["drifted"].map({True: 0, False: 1}).fillna(2)
        frame = frame.assign(_o=order, _s=-frame["score"].fillna(-1.0))
        return frame.sort_values(["_o", "_s"]).drop(columns=["_o", "_s"]).reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """The whole report as plain JSON-ready data."""
        return {
            "dataset_drift": self.dataset_drift,
            "drifted": self.drifted,
            "share": self.share,
            "ref_rows": self.ref_rows,
            "cur_rows": self.cur_rows,
            "missing_in_current": self.missing_in_current,
            "new_in_current": self.new_in_current,
            "thresholds": asdict(self.thresholds),
            "columns": [_clean(asdict(c)) for c in self.columns],
            "prediction": _clean(asdict(self.prediction)) if self.prediction else None,
        }

    def chart(self) -> Any:
        """A bar chart of each column's PSI, coloured by the verdict (altair)."""
        import altair as alt

        frame = self.to_frame()
        frame = frame[frame["score"].notna()]
        color = alt.Color(
            "status:N",
            scale=alt.Scale(domain=["drifted", "ok"], range=["#cf222e", "#1a7f37"]),
        )
        return (
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("score:Q", title="PSI"),
                y=alt.Y("column:N", sort="-x", title=None),
                color=color,
                tooltip=["column", "test", "score", "pvalue", "status"],
            )
            .properties(title="Drift by column", width=360)
        )

    def _repr_html_(self) -> str:
        from ..html import drift_report_card

        return drift_report_card(self)

    def __repr__(self) -> str:
        state = {True: "DRIFT", False: "no drift", None: "not enough data"}[self.dataset_drift]
        return (
            f"<DriftReport {state}: {len(self.drifted)}/{len(self.evaluated)} columns drifted "
            f"({', '.join(self.drifted[:5])}{'…' if len(self.drifted) > 5 else ''}); "
            f"{self.ref_rows} reference rows, {self.cur_rows} current rows>"
        )


_STAT_COLUMNS = ("psi", "ks", "wasserstein_norm", "chi2", "jensen_shannon")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def _kind(series: Any) -> tuple[str, str | None]:
    """numeric or categorical, and a note when the column mixes types."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical", None
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric", None
    if getattr(dtype, "kind", "") == "O":
        values = series.dropna()
        if len(values):
            kinds = {type(v) for v in values.iloc[:1000]}
            numeric = all(issubclass(k, int | float | np.number) for k in kinds)
            if numeric and not any(issubclass(k, bool | np.bool_) for k in kinds):
                return "numeric", None
            if len(kinds) > 1:
                return "categorical", "mixed types: values compared as text"
    return "categorical", None


def _numeric_values(series: Any) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values[np.isfinite(values)]


def numeric_drifted(s: NumericStats, t: Thresholds) -> bool:
    """The default rule for a numeric column: significant and large enough."""
    return bool(
        s.ks_pvalue < t.ks_pvalue and (s.psi >= t.psi or s.wasserstein_norm >= t.wasserstein)
    )


def categorical_drifted(s: CategoricalStats, t: Thresholds) -> bool:
    """The default rule for a categorical column: significant and large enough."""
    return bool(
        s.chi2_pvalue < t.chi2_pvalue and (s.psi >= t.psi or s.jensen_shannon >= t.jensen_shannon)
    )


def _column(
    name: str, ref: Any, cur: Any, t: Thresholds, min_rows: int, max_categories: int
) -> ColumnDrift:
    kind, note = _kind(ref)
    if kind == "numeric" and _kind(cur)[0] != "numeric":
        kind, note = "categorical", "numeric in the reference, not in the current data"
    missing_ref = float(ref.isna().mean()) if len(ref) else 0.0
    missing_cur = float(cur.isna().mean()) if len(cur) else 0.0
    result = ColumnDrift(
        column=name,
        kind=kind,
        status="ok",
        drifted=None,
        test="",
        score=None,
        pvalue=None,
        missing_ref=missing_ref,
        missing_cur=missing_cur,
    )
    if note:
        result.notes.append(note)
    if abs(missing_cur - missing_ref) >= t.missing_share:
        result.notes.append(
            f"missing values {missing_ref:.1%} in the reference, {missing_cur:.1%} now"
        )
    if kind == "numeric":
        r, c = _numeric_values(ref), _numeric_values(cur)
        result.test = "KS + PSI + Wasserstein"
        result.rule = (
            f"KS p < {t.ks_pvalue:g} and (PSI >= {t.psi:g} or Wasserstein/sd >= {t.wasserstein:g})"
        )
    else:
        r = ref.dropna().astype(str)
        c = cur.dropna().astype(str)
        result.test = "chi-square + PSI + Jensen-Shannon"
        result.rule = (
            f"chi-square p < {t.chi2_pvalue:g} and (PSI >= {t.psi:g} or JS >= {t.jensen_shannon:g})"
        )
    result.ref_rows, result.cur_rows = len(r), len(c)
    if len(r) == 0 or len(c) == 0:
        result.status = "no data"
        side = "reference" if len(r) == 0 else "current data"
        result.notes.append(f"every value is missing in the {side}")
        return result
    if len(r) < min_rows or len(c) < min_rows:
        result.status = "not enough data"
        result.notes.append(f"{min(len(r), len(c))} values; at least {min_rows} are needed")
        return result
    if kind == "numeric":
        s = numeric_stats(r, c)
        result.stats = {
            "ks": s.ks,
            "wasserstein": s.wasserstein,
            "wasserstein_norm": s.wasserstein_norm,
            "psi": s.psi,
        }
        result.score, result.pvalue = s.psi, s.ks_pvalue
        result.drifted = numeric_drifted(s, t)
        lo, hi = float(r.min()), float(r.max())
        result.out_of_range = float(np.mean((c < lo) | (c > hi)))
        if r.min() == r.max():
            result.notes.append("constant in the reference")
    else:
        ref_counts = r.value_counts()
        cur_counts = c.value_counts()
        categories = ref_counts.add(cur_counts, fill_value=0).sort_values(ascending=False)
        distinct = len(ref_counts)
        if distinct > max_categories and distinct > 0.5 * len(r):
            result.status = "identifier-like"
            result.notes.append(
                f"{distinct} distinct values in {len(r)} reference rows: it looks like an "
                "identifier, so its distribution is not compared"
            )
            return result
        if len(categories) > max_categories:
            result.notes.append(
                f"{len(categories)} distinct values: the {max_categories - 1} most frequent "
                f"in the reference compared, the rest as {OTHER!r}"
            )
            kept = list(ref_counts.index[: max_categories - 1])
            rc = ref_counts.reindex(kept, fill_value=0).to_numpy()
            cc = cur_counts.reindex(kept, fill_value=0).to_numpy()
            rc = np.append(rc, len(r) - rc.sum())
            cc = np.append(cc, len(c) - cc.sum())
        else:
            rc = ref_counts.reindex(categories.index, fill_value=0).to_numpy()
            cc = cur_counts.reindex(categories.index, fill_value=0).to_numpy()
        s = categorical_stats(rc, cc)
        result.stats = {
            "psi": s.psi,
            "chi2": s.chi2,
            "jensen_shannon": s.jensen_shannon,
        }
        result.score, result.pvalue = s.psi, s.chi2_pvalue
        result.drifted = categorical_drifted(s, t)
        new = cur_counts[~cur_counts.index.isin(ref_counts.index)]
        if len(new):
            result.new_categories = list(new.index[:10])
            result.new_share = float(new.sum() / len(c))
            result.notes.append(
                f"{len(new)} new categories ({result.new_share:.1%} of current rows)"
            )
    result.status = "drifted" if result.drifted else "ok"
    return result


def drift_report(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None = None,
    prediction: str | None = None,
    thresholds: Thresholds | dict[str, float] | None = None,
    min_rows: int = 30,
    max_categories: int = MAX_CATEGORIES,
) -> DriftReport:
    """Compare ``current`` with ``reference`` (two DataFrames) column by column.

    Columns present on one side only are reported and left out; ``columns`` narrows the
    comparison; ``prediction`` names the model-output column, reported as prediction drift
    apart from the features.
    """
    import pandas as pd

    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError(
                f"The {name} must be a pandas DataFrame (or a data reference such as "
                f"'churn_train@v3'), got {type(frame).__name__}."
            )
    t = Thresholds.of(thresholds)
    if min_rows < 1:
        raise ValidationError("min_rows must be at least 1.")
    if max_categories < 2:
        raise ValidationError("max_categories must be at least 2.")
    ref_cols = [str(c) for c in reference.columns]
    cur_cols = [str(c) for c in current.columns]
    if columns is not None:
        unknown = [c for c in columns if c not in ref_cols and c not in cur_cols]
        if unknown:
            raise ValidationError(f"Unknown columns {unknown}; the frames have {ref_cols[:20]}.")
        ref_cols = [c for c in ref_cols if c in columns]
        cur_cols = [c for c in cur_cols if c in columns]
    common = [c for c in ref_cols if c in cur_cols]
    report = DriftReport(
        columns=[],
        thresholds=t,
        ref_rows=len(reference),
        cur_rows=len(current),
        missing_in_current=[c for c in ref_cols if c not in cur_cols],
        new_in_current=[c for c in cur_cols if c not in ref_cols],
        min_rows=min_rows,
    )
    ref = reference.set_axis([str(c) for c in reference.columns], axis=1)
    cur = current.set_axis([str(c) for c in current.columns], axis=1)
    for name in common:
        verdict = _column(name, ref[name], cur[name], t, min_rows, max_categories)
        if name == prediction:
            report.prediction = verdict
        else:
            report.columns.append(verdict)
    return report
