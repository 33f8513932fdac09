"""Which input columns a fitted model takes missing values (null, NaN) in, decided once
when it is loaded, column by column, from the model itself and its training data.

A column takes missing values when every step its values go through either handles them
or passes them on to a step that does: an imputer fills them, a ``OneHotEncoder`` that saw
NaN in fit (or ignores unknown categories) encodes them, a ``StandardScaler`` passes them
through to the estimator, and an estimator that accepts NaN (``HistGradientBoosting*``,
scikit-learn's ``allow_nan`` tag) predicts on them. A column the training data had missing
values in takes them too: the model was fitted on them. Anything else (a
``LogisticRegression`` without an imputer in front) does not, and a request with a
missing value there is refused naming the rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["missing_value_columns", "trained_with_missing"]

OK, PASS, FAIL, UNUSED = "ok", "pass", "fail", "unused"
"""What a step does with a missing value in one of its inputs: handles it (OK), hands it
on to the next step (PASS), refuses it (FAIL), or never reads that column (UNUSED)."""

_WORST = {UNUSED: 0, OK: 1, PASS: 2, FAIL: 3}
ANY = "\0any"
"""Stands for "some input" after a step whose outputs no longer map to the input columns
(the next steps are judged for all their inputs at once)."""


def missing_value_columns(
    model: Any, names: list[str], trained_with: Iterable[str] = ()
) -> frozenset[str]:
    """The columns of ``names`` (the signature's, in order) where ``model`` takes missing
    values: decided from the fitted model, plus the columns ``trained_with`` missing
    values (fit succeeded on them)."""
    try:
        status = _flow(model, list(names), last=True)
    except Exception:  # an estimator we cannot read: only the training data decides
        status = {}
    taken = {n for n in names if status.get(n, FAIL) in (OK, UNUSED)}
    taken |= set(trained_with) & set(names)
    return frozenset(taken - _refused_by_flavor(model, list(names)))


def _refused_by_flavor(model: Any, names: list[str]) -> set[str]:
    """The columns the model's flavor says it never takes missing values in (CatBoost's
    categorical features), whatever the rest of the model does."""
    from ..tracking.flavors import flavor_for

    kind = flavor_for(model)
    if kind is None:
        return set()
    try:
        return set(kind.refuses_missing(model, names))
    except Exception:
        return set()


def trained_with_missing(signature: dict[str, Any]) -> set[str]:
    """The input columns the signature records missing values in the training data for."""
    return {str(c) for c in signature.get("trained_with_missing") or []}


def _worst(*values: str) -> str:
    return max(values, key=_WORST.__getitem__) if values else UNUSED


def _allows_nan(est: Any) -> bool | None:
    """The model flavor's word (gradient-boosted trees take missing values natively), else
    scikit-learn's ``allow_nan`` input tag (None when the estimator has neither)."""
    from ..tracking.flavors import flavor_for

    kind = flavor_for(est)
    said = kind.takes_missing(est) if kind is not None else None
    if said is not None:
        return said
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(est).input_tags.allow_nan)
    except Exception:
        return None


def _merge(into: dict[str, str], got: dict[str, str]) -> None:
    for name, value in got.items():
        into[name] = _worst(into.get(name, UNUSED), value)


def _flow(est: Any, cols: list[str], last: bool) -> dict[str, str]:
    """{input column: OK | PASS | FAIL | UNUSED} for a missing value in that column of
    ``est``'s input; ``last`` means ``est`` is the predictor (nothing follows it)."""
    if isinstance(est, str) or est is None:
        return dict.fromkeys(cols, UNUSED if est == "drop" else PASS)
    kind = type(est).__name__
    if kind == "Pipeline" and hasattr(est, "steps"):
        return _pipeline(est, cols, last)
    if hasattr(est, "transformers_"):  # a fitted ColumnTransformer
        return _column_transformer(est, cols)
    if kind == "FeatureUnion" and hasattr(est, "transformer_list"):
        status: dict[str, str] = {}
        for _, part in est.transformer_list:
            _merge(status, _flow(part, cols, False))
        return status
    inner = _inner_estimators(est)
    if inner:
        status = {}
        for part in inner:
            _merge(status, _flow(part, cols, last))
        return status
    return _leaf(est, cols, last)


def _inner_estimators(est: Any) -> list[Any]:
    """The fitted estimators a meta-estimator predicts through (searches, target
    transforms, calibration, voting and stacking), whose own tags may not say."""
    for attr in ("best_estimator_", "regressor_"):
        found = getattr(est, attr, None)
        if found is not None and hasattr(found, "predict"):
            return [found]
    calibrated = getattr(est, "calibrated_classifiers_", None)
    if calibrated:
        return [c.estimator for c in calibrated if getattr(c, "estimator", None) is not None]
    if type(est).__name__.startswith(("Voting", "Stacking")):
        return [e for e in getattr(est, "estimators_", []) if e not in (None, "drop")]
    return []


def _pipeline(est: Any, cols: list[str], last: bool) -> dict[str, str]:
    steps = [s for _, s in est.steps if s not in (None, "passthrough")]
    status = dict.fromkeys(cols, PASS)
    alive = list(cols)
    for i, step in enumerate(steps):
        final = last and i == len(steps) - 1
        if i == 0:
            got = _flow(step, alive, final)
        else:  # later steps see transformed features: judged for any input
            verdict = _worst(*_flow(step, [ANY], final).values())
            got = dict.fromkeys(alive, verdict)
        for name in alive:
            status[name] = got.get(name, UNUSED)
        alive = [n for n in alive if status[n] == PASS]
        if not alive:
            break
    if last:  # a missing value that comes out of the predictor was never handled
        status = {n: FAIL if s == PASS else s for n, s in status.items()}
    return status


def _column_transformer(est: Any, cols: list[str]) -> dict[str, str]:
    """Each branch judges the columns it selects; a column in several takes the worst."""
    fitted_names = getattr(est, "feature_names_in_", None)
    positions = getattr(est, "_transformer_to_input_indices", None) or {}
    status: dict[str, str] = {}
    for name, trans, _ in est.transformers_:
        if cols == [ANY]:
            if name in positions and not len(positions[name]):
                continue
            _merge(status, _flow(trans, [ANY], False))
            continue
        if name not in positions:
            raise LookupError(f"no input columns known for branch {name!r}")
        chosen = [
            str(fitted_names[j]) if fitted_names is not None else cols[j] for j in positions[name]
        ]
        if chosen:
            _merge(status, _flow(trans, chosen, False))
    if cols == [ANY]:
        return {ANY: _worst(*status.values())}
    return {n: status.get(n, UNUSED) for n in cols}


def _leaf(est: Any, cols: list[str], last: bool) -> dict[str, str]:
    """A single transformer or predictor."""
    allows = _allows_nan(est)
    if last or not hasattr(est, "transform"):
        return dict.fromkeys(cols, OK if allows else FAIL)
    module = type(est).__module__
    kind = type(est).__name__
    if module.startswith("sklearn.impute") or kind.endswith("Imputer"):
        return dict.fromkeys(cols, OK if allows else FAIL)
    if kind == "MissingIndicator":
        return dict.fromkeys(cols, OK)
    if kind in ("OneHotEncoder", "OrdinalEncoder") and hasattr(est, "categories_"):
        return _encoder(est, cols)
    if kind == "TargetEncoder":  # missing is a category; unseen ones get the target mean
        return dict.fromkeys(cols, OK)
    return dict.fromkeys(cols, PASS if allows else FAIL)


def _has_nan(categories: Any) -> bool:
    import math

    return any(c is None or (isinstance(c, float) and math.isnan(c)) for c in categories)


def _encoder(est: Any, cols: list[str]) -> dict[str, str]:
    """A OneHotEncoder encodes a missing value it saw in fit as its own category, and one it
    did not see as all zeros when it ignores unknown categories; an OrdinalEncoder gives
    ``encoded_missing_value`` (NaN by default: passed on) or ``unknown_value``."""
    import math

    one_hot = type(est).__name__ == "OneHotEncoder"
    handle = getattr(est, "handle_unknown", "error")
    verdicts = []
    for categories in est.categories_:
        if one_hot:
            ok = _has_nan(categories) or handle in ("ignore", "infrequent_if_exist", "warn")
            verdicts.append(OK if ok else FAIL)
            continue
        if _has_nan(categories):
            value = getattr(est, "encoded_missing_value", math.nan)
        elif handle == "use_encoded_value":
            value = getattr(est, "unknown_value", None)
        else:
            verdicts.append(FAIL)
            continue
        is_nan = value is None or (isinstance(value, float) and math.isnan(value))
        verdicts.append(PASS if is_nan else OK)
    if cols == [ANY] or len(verdicts) != len(cols):
        return dict.fromkeys(cols, _worst(*verdicts))
    return dict(zip(cols, verdicts, strict=True))
