"""Gates: the checks a challenger must pass before an alias moves to it, shared by
retraining jobs and ``jupyter-mlops ci run``.

A gate is a list of items, each giving one PASS/FAIL/SKIP line:

- metric checks in the run query language, ``"accuracy >= 0.85"``, ``"rmse < 3.2"``,
  ``"f1 >= champion - 0.01"``: metric names are scikit-learn scorers (plus ``rmse``,
  ``mae``, ``mse``, ``log_loss``), computed on the holdout; ``champion`` is the champion's
  score of the check's first metric on the same holdout (``champion.f1`` names one);
- the data checks, always on: the challenger's inputs match the champion's signature, and
  none of its training columns is entirely missing;
- callables ``fn(context) -> bool | (bool, str)`` for anything else.

Both models are re-scored on the same holdout rows: the champion's recorded metric is
never reused, since it was measured on other data.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import QueryError, ValidationError
from ..tracking.expressions import Check

__all__ = [
    "Candidate",
    "GateContext",
    "GateLine",
    "GateResult",
    "Holdout",
    "evaluate_gate",
    "metric_names",
    "parse_gate",
    "score",
]

# Friendly names for scorers whose scikit-learn name is negated (greater is better there).
_NEGATED = {
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "mse": "neg_mean_squared_error",
    "log_loss": "neg_log_loss",
    "median_ae": "neg_median_absolute_error",
    "mape": "neg_mean_absolute_percentage_error",
}
_POSITIVE_CLASS = {"f1", "precision", "recall", "jaccard", "average_precision"}
CHAMPION = "champion"


def metric_names() -> list[str]:
    """Every metric name a gate can use."""
    from sklearn.metrics import get_scorer_names

    return sorted(set(get_scorer_names()) | set(_NEGATED))


def _scorer(name: str, model: Any) -> tuple[Callable[..., float], float]:
    from sklearn.metrics import get_scorer

    if name in _NEGATED:
        return get_scorer(_NEGATED[name]), -1.0
    classes = getattr(model, "classes_", None)
    if name in _POSITIVE_CLASS and classes is not None and len(classes) == 2:
        positive = classes[-1]
        if positive not in (1, True):  # labels like "yes"/"no": the second class is positive
            from sklearn import metrics
            from sklearn.metrics import make_scorer

            if name == "average_precision":
                return make_scorer(
                    metrics.average_precision_score,
                    response_method=("decision_function", "predict_proba"),
                    pos_label=positive,
                ), 1.0
            fn = getattr(metrics, f"{name}_score")
            return make_scorer(fn, pos_label=positive, zero_division=0), 1.0
    return get_scorer(name), 1.0


def score(metric: str, model: Any, x: Any, y: Any) -> float:
    """``metric`` of ``model`` on ``(x, y)``, in the metric's own units (rmse positive)."""
    scorer, sign = _scorer(metric, model)
    return float(sign * scorer(model, x, y))


@dataclass(frozen=True)
class MetricCheck:
    """A gate expression, with the metric names it reads."""

    text: str
    check: Check
    metrics: tuple[str, ...]
    uses_champion: bool

    @property
    def label(self) -> str:
        return self.text


@dataclass(frozen=True)
class CallableCheck:
    """A user function ``fn(context) -> bool | (bool, message)``."""

    fn: Callable[[GateContext], Any]

    @property
    def label(self) -> str:
        return getattr(self.fn, "__name__", None) or repr(self.fn)


GateItem = MetricCheck | CallableCheck


def _champion_metric(name: str) -> str | None:
    if name == CHAMPION:
        return None
    return name.split(".", 1)[1] if name.startswith(CHAMPION + ".") else name


def parse_gate(items: Iterable[str | Callable[..., Any]] | str | None) -> list[GateItem]:
    """Parse and check a gate before any training happens: a bad expression or an
    unknown metric is an error here, not a failed job an hour later."""
    if items is None:
        return []
    if isinstance(items, str) or callable(items):
        items = [items]
    known = set(metric_names())
    parsed: list[GateItem] = []
    for item in items:
        if callable(item):
            parsed.append(CallableCheck(item))
            continue
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(
                f"A gate item must be an expression such as 'accuracy >= 0.9' or a "
                f"function, got {item!r}."
            )
        try:
            check = Check(item)
        except QueryError as exc:
            raise ValidationError(f"Gate {item!r} does not parse: {exc}") from None
        metrics: list[str] = []
        for name in check.names:
            metric = _champion_metric(name)
            if metric is None:
                continue
            if metric not in known:
                import difflib

                close = [n for n in sorted(known) if n.startswith(metric)][:3]
                close = close or difflib.get_close_matches(metric, sorted(known), n=3, cutoff=0.6)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ValidationError(
                    f"Gate {item!r} names the unknown metric {metric!r}.{hint} Metrics are "
                    "scikit-learn scorer names (accuracy, f1, roc_auc, r2, …) or rmse, mae, "
                    "mse, log_loss."
                )
            if metric not in metrics:
                metrics.append(metric)
        uses_champion = any(_champion_metric(n) != n or n == CHAMPION for n in check.names)
        if not metrics:
            raise ValidationError(f"Gate {item!r} reads no metric; write e.g. 'f1 >= champion'.")
        parsed.append(MetricCheck(check.text, check, tuple(metrics), uses_champion))
    return parsed


@dataclass
class Holdout:
    """The evaluation data both models are scored on: a stored data version (``ref``,
    ``content_hash``) with the rows neither model was fitted on."""

    x: Any
    y: Any
    ref: str
    content_hash: str
    rows: int
    target: str
    excluded: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "content_hash": self.content_hash,
            "rows": self.rows,
            "target": self.target,
            "excluded": self.excluded,
        }


@dataclass
class Candidate:
    """A model a gate judges: the object, its signature and where it came from."""

    label: str  # "churn@3", or "run 1a2b3c4d" before registration
    model: Any
    signature: dict[str, Any]
    training: list[tuple[str, Any]] = field(default_factory=list)  # (ref, frame)

    @property
    def features(self) -> list[str]:
        return [str(i["name"]) for i in self.signature.get("inputs", [])]


@dataclass
class GateContext:
    """What a callable gate item receives."""

    challenger: Candidate
    champion: Candidate | None
    holdout: Holdout | None
    scores: dict[str, dict[str, float]]


@dataclass(frozen=True)
class GateLine:
    """One check's outcome, as a report shows it."""

    check: str
    status: str  # PASS FAIL SKIP
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status != "FAIL"

    @property
    def line(self) -> str:
        return f"{self.status} {self.check}" + (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail}


@dataclass
class GateResult:
    """Every line of a gate, the scores behind them and the verdict."""

    lines: list[GateLine]
    scores: dict[str, dict[str, float]]
    holdout: dict[str, Any] | None
    challenger: str
    champion: str | None
    compared: bool = True  # False: no check compared the models (nothing to promote on)

    @property
    def passed(self) -> bool:
        return all(line.passed for line in self.lines)

    @property
    def failures(self) -> list[GateLine]:
        return [line for line in self.lines if not line.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "lines": [line.to_dict() for line in self.lines],
            "scores": self.scores,
            "holdout": self.holdout,
            "challenger": self.challenger,
            "champion": self.champion,
            "compared": self.compared,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(
            lines=[GateLine(**line) for line in data.get("lines", [])],
            scores=data.get("scores", {}),
            holdout=data.get("holdout"),
            challenger=data.get("challenger", ""),
            champion=data.get("champion"),
            compared=data.get("compared", True),
        )

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return "\n".join([f"Gate {verdict}:", *(f"  {line.line}" for line in self.lines)])

    def _repr_html_(self) -> str:
        from ..html import gate_card

        return gate_card(self)


def _fmt(value: float | None) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.4g}"
    )


def _schema_line(challenger: Candidate, champion: Candidate | None) -> GateLine:
    name = "inputs match the champion's signature"
    if champion is None:
        return GateLine(name, "PASS", "no champion yet: first model")
    mine = {
        str(i["name"]): str(i.get("dtype", "unknown"))
        for i in challenger.signature.get("inputs", [])
    }
    theirs = {
        str(i["name"]): str(i.get("dtype", "unknown")) for i in champion.signature.get("inputs", [])
    }
    problems = []
    missing = [c for c in theirs if c not in mine]
    extra = [c for c in mine if c not in theirs]
    if missing:
        problems.append(f"missing {', '.join(missing[:5])}")
    if extra:
        problems.append(f"new {', '.join(extra[:5])}")
    changed = [
        f"{c} {theirs[c]}→{mine[c]}"
        for c in theirs
        if c in mine and "unknown" not in (mine[c], theirs[c]) and mine[c] != theirs[c]
    ]
    if changed:
        problems.append(f"dtype {', '.join(changed[:5])}")
    if problems:
        return GateLine(name, "FAIL", "; ".join(problems))
    return GateLine(name, "PASS", f"{len(mine)} columns, same names and dtypes")


def _missing_line(challenger: Candidate) -> GateLine:
    name = "no training column entirely missing"
    if not challenger.training:
        return GateLine(name, "SKIP", "the challenger's training data was not recorded")
    empty: list[str] = []
    for ref, frame in challenger.training:
        columns = getattr(frame, "columns", None)
        if columns is None:
            if len(frame) and frame.isna().all():
                empty.append(f"{ref} (all values)")
            continue
        if len(frame):
            empty += [f"{c} in {ref}" for c, all_na in frame.isna().all().items() if all_na]
    if empty:
        return GateLine(name, "FAIL", ", ".join(empty[:5]))
    refs = ", ".join(ref for ref, _ in challenger.training)
    return GateLine(name, "PASS", refs)


def _scores(
    candidate: Candidate, metrics: Sequence[str], holdout: Holdout
) -> tuple[dict[str, float], str | None]:
    """Each metric of ``candidate`` on the holdout, its own columns in its own order."""
    out: dict[str, float] = {}
    who = candidate.label
    features = candidate.features
    x = holdout.x[features] if features and hasattr(holdout.x, "columns") else holdout.x
    for metric in metrics:
        try:
            out[metric] = score(metric, candidate.model, x, holdout.y)
        except Exception as exc:
            return out, f"{who} cannot be scored on {metric}: {type(exc).__name__}: {exc}"
    return out, None


def _metric_line(
    item: MetricCheck, scores: dict[str, dict[str, float]], has_champion: bool
) -> GateLine:
    mine = scores.get("challenger", {})
    theirs = scores.get("champion", {})
    values: dict[str, Any] = {m: mine.get(m) for m in item.metrics}
    for name in item.check.names:
        metric = _champion_metric(name)
        if metric is None:
            values[name] = theirs.get(item.metrics[0])
        elif metric != name:
            values[name] = theirs.get(metric)
    if item.uses_champion and not has_champion:
        shown = ", ".join(f"{m} = {_fmt(mine.get(m))}" for m in item.metrics)
        return GateLine(item.text, "PASS", f"no champion yet, passes as the first model; {shown}")
    if any(v is None for v in values.values()):
        return GateLine(item.text, "FAIL", "a score could not be computed")
    result = item.check(values)
    shown = ", ".join(f"{k} = {_fmt(v)}" for k, v in values.items())
    return GateLine(item.text, "PASS" if result.passed else "FAIL", shown)


def _callable_line(item: CallableCheck, context: GateContext) -> GateLine:
    try:
        outcome = item.fn(context)
    except Exception as exc:
        return GateLine(item.label, "FAIL", f"raised {type(exc).__name__}: {exc}")
    message = ""
    if isinstance(outcome, tuple) and len(outcome) == 2:
        outcome, message = outcome
    return GateLine(item.label, "PASS" if bool(outcome) else "FAIL", str(message or ""))


def evaluate_gate(
    items: Sequence[GateItem],
    challenger: Candidate,
    champion: Candidate | None,
    holdout: Holdout | None,
) -> GateResult:
    """Judge ``challenger`` against ``champion`` on ``holdout``: every line, never an
    exception for a failing model (a scoring error is a FAIL line naming it)."""
    lines = [_schema_line(challenger, champion), _missing_line(challenger)]
    metric_items = [i for i in items if isinstance(i, MetricCheck)]
    metrics = list(dict.fromkeys(m for i in metric_items for m in i.metrics))
    scores: dict[str, dict[str, float]] = {}
    if metrics and holdout is None:
        lines.append(
            GateLine(
                "holdout",
                "FAIL",
                "the gate scores models but no holdout was given: pass holdout='name@vN', "
                "a stored data version with the model's inputs and its label column",
            )
        )
    elif metrics and holdout is not None:
        scores["challenger"], problem = _scores(challenger, metrics, holdout)
        if problem:
            lines.append(GateLine("score the challenger", "FAIL", problem))
        if champion is not None:
            scores["champion"], problem = _scores(champion, metrics, holdout)
            if problem:
                lines.append(GateLine("score the champion", "FAIL", problem))
        for item in metric_items:
            lines.append(_metric_line(item, scores, champion is not None))
    context = GateContext(challenger, champion, holdout, scores)
    for item in items:
        if isinstance(item, CallableCheck):
            lines.append(_callable_line(item, context))
    return GateResult(
        lines=lines,
        scores=scores,
        holdout=holdout.to_dict() if holdout is not None else None,
        challenger=challenger.label,
        champion=champion.label if champion is not None else None,
    )


def gate_lines_html(result: GateResult) -> str:
    """The gate's lines as an HTML list (shared by the job card and the CI summary)."""
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
