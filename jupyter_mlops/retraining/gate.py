"""Gates: the checks a challenger must pass before an alias moves to it, shared by
retraining jobs and ``jupyter-mlops ci run``.

A gate is a list of items, each giving one PASS/FAIL/SKIP line:

- metric checks in the run query language, ``"accuracy >= 0.85"``, ``"rmse < 3.2"``,
  ``"f1 >= champion - 0.01"``: bare metric names are scikit-learn scorers (plus ``rmse``,
  ``mae``, ``mse``, ``log_loss``), computed on the holdout; ``champion`` is the champion's
  score of the check's first metric on the same holdout (``champion.f1`` names one);
- recorded metrics, ``"metrics.test_accuracy >= 0.9"``: the value the challenger's run
  recorded (no holdout needed); ``champion.metrics.NAME`` is the value the champion's run
  recorded, which its line says may come from other data;
- the data checks, always on: the challenger's inputs match the champion's signature, and
  none of its training columns is entirely missing;
- functions ``fn(context) -> bool | (bool, str)`` for anything else, given as an import
  path ``"mypkg.gates:fairness_ok"`` (imported where the job runs) or, for a job that runs
  in the process that submitted it, as the function object itself.

Scorer metrics re-score both models on the same holdout rows. Nothing executable is ever
read from the store: a gate is stored as its text, an import path included.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import QueryError, ValidationError
from ..tracking.estimators import dtype_kind
from ..tracking.expressions import Check

__all__ = [
    "Candidate",
    "GateContext",
    "GateLine",
    "GateResult",
    "Holdout",
    "evaluate_gate",
    "import_path",
    "is_import_path",
    "metric_names",
    "parse_gate",
    "resolve_function",
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
RECORDED = "metrics."
DIFFERENT_DATA = "recorded by each run, possibly on different data"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*$")


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
    """A gate expression, with the metrics it reads: ``metrics`` scored on the holdout,
    ``recorded`` the challenger's recorded values, ``champion_recorded`` the champion's."""

    text: str
    check: Check
    metrics: tuple[str, ...]
    uses_champion: bool
    recorded: tuple[str, ...] = ()
    champion_recorded: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.text


@dataclass(frozen=True)
class CallableCheck:
    """A user function ``fn(context) -> bool | (bool, message)``; ``path`` is its import
    path when it was given as one (what is stored), else None (an object in this process)."""

    fn: Callable[[GateContext], Any]
    path: str | None = None

    @property
    def label(self) -> str:
        return self.path or getattr(self.fn, "__name__", None) or repr(self.fn)


GateItem = MetricCheck | CallableCheck


def is_import_path(text: str) -> bool:
    """Whether a gate item is a function's import path, ``package.module:function``."""
    return bool(_IMPORT_PATH.match(text.strip()))


def import_path(fn: Callable[..., Any]) -> str | None:
    """The import path that names ``fn`` (``mypkg.gates:fairness_ok``) when importing it
    gives back the same object; None for a lambda, a closure or a function of __main__."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:
        return None
    return f"{module}:{qualname}" if found is fn else None


def _python_path() -> None:
    """Put this environment's PYTHONPATH on sys.path (a runner forked by the warm launcher
    has the job's environment variables but the launcher's sys.path)."""
    for entry in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        if entry and entry not in sys.path:
            sys.path.insert(0, entry)


def resolve_function(path: str) -> Callable[..., Any]:
    """The function named by the import path ``package.module:function``, imported in
    this process's environment; a ValidationError that says what to do when it cannot be."""
    path = path.strip()
    where = (
        f"A gate function is imported where the job runs (here: {sys.executable}); install "
        "its package in that environment or put its folder on PYTHONPATH."
    )
    if not is_import_path(path):
        raise ValidationError(
            f"Gate function {path!r} is not an import path: write 'package.module:function', "
            "e.g. 'mypkg.gates:fairness_ok'."
        )
    module_name, _, attribute = path.partition(":")
    _python_path()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValidationError(
            f"Gate function {path!r}: module {module_name!r} cannot be imported here "
            f"({type(exc).__name__}: {exc}). {where}"
        ) from None
    except Exception as exc:
        raise ValidationError(
            f"Gate function {path!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}."
        ) from None
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            names = sorted(
                n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
            )
            raise ValidationError(
                f"Gate function {path!r}: {module_name!r} has no attribute {part!r}; its "
                f"functions: {', '.join(names[:20]) or 'none'}."
            )
        found = getattr(found, part)
    if not callable(found):
        raise ValidationError(
            f"Gate function {path!r} is not a function (it is a {type(found).__name__}); "
            "it must take the gate context and return a bool or (bool, message)."
        )
    return found


def _kind(name: str) -> tuple[str, str | None]:
    """What a name in a gate expression reads: (``"score"`` | ``"recorded"``, metric) for
    the challenger, (``"champion-score"`` | ``"champion-recorded"``, metric), or
    (``"champion"``, None) for the champion's value of the check's first metric."""
    if name == CHAMPION:
        return "champion", None
    if name.startswith(CHAMPION + "."):
        rest = name[len(CHAMPION) + 1 :]
        if rest.startswith(RECORDED):
            return "champion-recorded", rest[len(RECORDED) :]
        return "champion-score", rest
    if name.startswith(RECORDED):
        return "recorded", name[len(RECORDED) :]
    return "score", name


def _unknown_metric(item: str, metric: str, known: set[str]) -> ValidationError:
    import difflib

    if "." in metric:
        return ValidationError(
            f"Gate {item!r} names {metric!r}. A gate reads metrics: scorer names computed "
            "on the holdout (accuracy, f1, roc_auc, r2, rmse, …), metrics.NAME (the value "
            "the run recorded), champion, champion.NAME or champion.metrics.NAME."
        )
    close = [n for n in sorted(known) if n.startswith(metric)][:3]
    close = close or difflib.get_close_matches(metric, sorted(known), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ValidationError(
        f"Gate {item!r} names the unknown metric {metric!r}.{hint} Metrics are "
        "scikit-learn scorer names (accuracy, f1, roc_auc, r2, …) or rmse, mae, "
        "mse, log_loss, scored on the holdout; metrics.NAME reads the value the run "
        "recorded."
    )


def _parse_expression(item: str, known: set[str]) -> MetricCheck:
    try:
        check = Check(item)
    except QueryError as exc:
        raise ValidationError(f"Gate {item!r} does not parse: {exc}") from None
    scored: list[str] = []
    recorded: list[str] = []
    champion_recorded: list[str] = []
    first: str | None = None
    for name in check.names:
        kind, metric = _kind(name)
        if metric is None:
            continue
        if kind in ("recorded", "champion-recorded"):
            target = recorded if kind == "recorded" else champion_recorded
        else:
            if metric not in known:
                raise _unknown_metric(item, metric, known)
            target = scored
        if metric not in target:
            target.append(metric)
        if first is None and kind in ("score", "recorded"):
            first = kind
    if not (scored or recorded):
        if champion_recorded:
            raise ValidationError(
                f"Gate {item!r} reads only the champion; compare the challenger with it, "
                "e.g. 'metrics.accuracy >= champion.metrics.accuracy'."
            )
        raise ValidationError(f"Gate {item!r} reads no metric; write e.g. 'f1 >= champion'.")
    if CHAMPION in check.names and first == "recorded":
        # bare `champion` next to a recorded metric: the champion's recorded value of it
        if recorded[0] not in champion_recorded:
            champion_recorded.append(recorded[0])
    uses_champion = any(_kind(n)[0].startswith(CHAMPION) for n in check.names)
    return MetricCheck(
        check.text,
        check,
        tuple(scored),
        uses_champion,
        tuple(recorded),
        tuple(champion_recorded),
    )


def parse_gate(items: Iterable[str | Callable[..., Any]] | str | None) -> list[GateItem]:
    """Parse and check a gate before any training happens: a bad expression, an unknown
    metric or an import path that cannot be imported is an error here, not a failed job
    an hour later."""
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
                f"A gate item must be an expression such as 'accuracy >= 0.9', a function's "
                f"import path such as 'mypkg.gates:fairness_ok', or a function, got {item!r}."
            )
        text = item.strip()
        if is_import_path(text) or (":" in text and not re.search(r"[<>=!]", text)):
            parsed.append(CallableCheck(resolve_function(text), text))
            continue
        parsed.append(_parse_expression(item, known))
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
    """A model a gate judges: the object, its signature, where it came from and the
    metrics its run recorded."""

    label: str  # "churn@3", or "run 1a2b3c4d" before registration
    model: Any
    signature: dict[str, Any]
    training: list[tuple[str, Any]] = field(default_factory=list)  # (ref, frame)
    metrics: dict[str, float] = field(default_factory=dict)  # as the run recorded them

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
    """Every line of a gate, the values behind them and the verdict: ``scores`` on the
    holdout, ``recorded`` as each model's run recorded them (``challenger``/``champion``)."""

    lines: list[GateLine]
    scores: dict[str, dict[str, float]]
    holdout: dict[str, Any] | None
    challenger: str
    champion: str | None
    compared: bool = True  # False: no check compared the models (nothing to promote on)
    recorded: dict[str, dict[str, float]] = field(default_factory=dict)

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
            "recorded": self.recorded,
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
            recorded=data.get("recorded", {}),
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
    differ = [c for c in theirs if c in mine and "unknown" not in (mine[c], theirs[c])]
    differ = [c for c in differ if mine[c] != theirs[c]]
    # int64 → float64 (a column that gained a missing value) still takes the same requests
    widened = [c for c in differ if {_family(mine[c]), _family(theirs[c])} == {"number"}]
    changed = [f"{c} {theirs[c]}→{mine[c]}" for c in differ if c not in widened]
    if changed:
        problems.append(f"dtype {', '.join(changed[:5])}")
    if problems:
        return GateLine(name, "FAIL", "; ".join(problems))
    if widened:
        shown = ", ".join(f"{c} {theirs[c]}→{mine[c]}" for c in widened[:5])
        return GateLine(name, "PASS", f"{len(mine)} columns, same names; numeric dtypes {shown}")
    return GateLine(name, "PASS", f"{len(mine)} columns, same names and dtypes")


def _family(dtype: str) -> str:
    kind = dtype_kind(dtype)
    return "number" if kind in ("int", "float") else kind


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
    """Each metric of ``candidate`` on the holdout, its own columns in its own order,
    scored on the framework's model as its flavor gives it to scikit-learn's scorers."""
    from ..tracking.flavors import flavor_for

    flavor = flavor_for(candidate.model)
    model = flavor.scorable(candidate.model) if flavor is not None else candidate.model
    out: dict[str, float] = {}
    who = candidate.label
    features = candidate.features
    x = holdout.x[features] if features and hasattr(holdout.x, "columns") else holdout.x
    for metric in metrics:
        try:
            out[metric] = score(metric, model, x, holdout.y)
        except Exception as exc:
            return out, f"{who} cannot be scored on {metric}: {type(exc).__name__}: {exc}"
    return out, None


def _recorded_problem(name: str, who: str, candidate: Candidate | None) -> str | None:
    if candidate is None or name in candidate.metrics:
        return None
    have = ", ".join(sorted(candidate.metrics)) or "none"
    return f"the {who} {candidate.label} recorded no metric {name!r}; it recorded: {have}"


def _metric_line(
    item: MetricCheck,
    scores: dict[str, dict[str, float]],
    challenger: Candidate,
    champion: Candidate | None,
) -> GateLine:
    mine = scores.get("challenger", {})
    theirs = scores.get("champion", {})
    values: dict[str, Any] = {}
    first_recorded = item.recorded[0] if item.recorded else None
    bare_recorded = False
    for name in item.check.names:
        kind, metric = _kind(name)
        if kind == "score":
            values[name] = mine.get(str(metric))
        elif kind == "recorded":
            values[name] = challenger.metrics.get(str(metric))
        elif kind == "champion-score":
            values[name] = theirs.get(str(metric))
        elif kind == "champion-recorded":
            values[name] = champion.metrics.get(str(metric)) if champion else None
        elif _first_is_score(item):  # bare `champion`: its value of the first metric
            values[name] = theirs.get(item.metrics[0])
        else:  # ... which is a recorded one: the value the champion's run recorded
            bare_recorded = True
            values[name] = champion.metrics.get(str(first_recorded)) if champion else None
    for metric in item.recorded:
        problem = _recorded_problem(metric, "challenger", challenger)
        if problem:
            return GateLine(item.text, "FAIL", problem)
    if item.uses_champion and champion is None:
        shown = ", ".join(
            f"{k} = {_fmt(v)}" for k, v in values.items() if not _kind(k)[0].startswith(CHAMPION)
        )
        return GateLine(item.text, "PASS", f"no champion yet, passes as the first model; {shown}")
    for metric in item.champion_recorded:
        problem = _recorded_problem(metric, "champion", champion)
        if problem:
            return GateLine(item.text, "FAIL", problem)
    if any(v is None for v in values.values()):
        return GateLine(item.text, "FAIL", "a score could not be computed")
    result = item.check(values)
    shown = ", ".join(f"{k} = {_fmt(v)}" for k, v in values.items())
    if item.champion_recorded or bare_recorded:
        shown += f"; {DIFFERENT_DATA}"
    return GateLine(item.text, "PASS" if result.passed else "FAIL", shown)


def _first_is_score(item: MetricCheck) -> bool:
    for name in item.check.names:
        kind = _kind(name)[0]
        if kind in ("score", "recorded"):
            return kind == "score"
    return False


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
        if item.metrics and holdout is None:
            continue  # the holdout line above says why it could not be judged
        lines.append(_metric_line(item, scores, challenger, champion))
    recorded = _recorded_values(metric_items, challenger, champion)
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
        recorded=recorded,
    )


def _recorded_values(
    items: Sequence[MetricCheck], challenger: Candidate, champion: Candidate | None
) -> dict[str, dict[str, float]]:
    """The recorded metrics the gate read, per model (for the reports' tables)."""
    names = list(dict.fromkeys(m for i in items for m in (*i.recorded, *i.champion_recorded)))
    out: dict[str, dict[str, float]] = {}
    for who, candidate in (("challenger", challenger), ("champion", champion)):
        if candidate is None:
            continue
        found = {n: float(candidate.metrics[n]) for n in names if n in candidate.metrics}
        if found:
            out[who] = found
    return out
