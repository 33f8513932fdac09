"""Params by the estimator's own parameter path, so runs of different models line up.

A run stores an estimator's params under the variable that held it and scikit-learn's
nested path: ``clf.hgb__learning_rate`` (a pipeline ``clf`` whose last step ``hgb`` is a
HistGradientBoostingClassifier), ``grid.estimator__hgb__learning_rate`` (a search over that
pipeline, whose best value is ``grid.best.hgb__learning_rate``), ``lgbm.lgbm__learning_rate``.
Compared by those keys, three runs share no row. ``aligned_params`` reads the structure
back from the keys alone (the ``steps`` a pipeline recorded, the ``estimator`` a search
wraps) and files every param under a group and the path it has in its own part:

* ``model``: the final estimator's own params (``learning_rate`` for all three above, and
  ``class``, its class name, where the run recorded it);
* ``pipeline``: the pipeline's params and its other steps' (``steps``, ``pre__num__with_mean``),
  by their path inside the pipeline, inside a search or not;
* ``search``: a search's own params (``cv``, ``scoring``); a wrapper that is no search
  (a calibrated classifier) keeps its variable's name;
* ``variables``: plain values the cell set or read (``C``, ``SEED``).

A search's best value stands in for the value its base estimator was given: it is the one
the model was refitted with. A run holding several models keeps each under its variable.
Plain Python on stored params: runs recorded by any version line up.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GROUPS", "AlignedParam", "aligned_params"]

GROUPS = ("model", "pipeline", "search", "variables")  # the order a comparison shows them
_WRAPPED = ("estimator", "base_estimator")  # the param naming a wrapper's inner estimator


@dataclass(frozen=True)
class AlignedParam:
    """One param of a run, filed by its place in the estimator."""

    group: str  # one of GROUPS, or a variable's name (a wrapper, or one of several models)
    name: str  # the path in its group: "learning_rate", "pre__num__with_mean", "C"
    value: Any
    stored: str  # the key the run stores it under: "clf.hgb__learning_rate"
    variable: str | None  # the variable it came from; None for plain variables

    @property
    def label(self) -> str:
        """The row's key across runs: ``model.learning_rate``, ``pipeline.steps``; a plain
        variable's own name (``C``)."""
        return self.name if self.group == "variables" else f"{self.group}.{self.name}"


def _join(node: str, part: str) -> str:
    return f"{node}__{part}" if node else part


def _under(path: str, node: str) -> str | None:
    """``path`` relative to ``node`` (``None`` when it is not below it)."""
    if not node:
        return path
    return path[len(node) + 2 :] if path.startswith(node + "__") else None


def _last_step(value: Any) -> str | None:
    """The last step's name of a pipeline's recorded ``steps`` (``"['pre', 'hgb']"``)."""
    try:
        names = ast.literal_eval(value) if isinstance(value, str) else value
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(names, list | tuple) and names and isinstance(names[-1], str):
        return names[-1]
    return None


class _Structure:
    """The nesting of one variable's estimator, read from its param paths."""

    def __init__(self, paths: Mapping[str, Any]):
        self.paths = paths
        nodes = {""}
        for path in paths:
            parts = path.split("__")
            nodes.update("__".join(parts[:i]) for i in range(1, len(parts)))
        self.wrappers: list[str] = []  # searches and other wrappers, outermost first
        self.pipelines: list[str] = []
        node = ""
        for _ in range(32):  # nesting is shallow; never loop on odd keys
            inner = next((_join(node, w) for w in _WRAPPED if _join(node, w) in nodes), None)
            if inner is not None:
                self.wrappers.append(node)
                node = inner
                continue
            last = _last_step(paths.get(_join(node, "steps")))
            if last is not None and (_join(node, last) in nodes or _join(node, last) in paths):
                self.pipelines.append(node)
                node = _join(node, last)
                continue
            break
        self.final = node

    def place(self, path: str) -> tuple[str, str]:
        """(part, path inside it) for a param path: part is "model", "pipeline" or
        "wrapper" (a search or another wrapper)."""
        if self.final and path == self.final:
            return "model", "class"
        own = _under(path, self.final)
        if own is not None:
            return "model", own
        if self.pipelines:
            inside = _under(path, self.pipelines[0])
            if inside is not None:
                return "pipeline", inside
        for wrapper in reversed(self.wrappers):
            inside = _under(path, wrapper)
            if inside is not None:
                return "wrapper", inside
        return "wrapper", path

    def inner(self) -> str:
        """The path a search's candidates (its best params) are relative to."""
        return _join(self.wrappers[0], "estimator") if self.wrappers else ""


def aligned_params(
    params: Mapping[str, Any],
    classes: Mapping[str, str] | None = None,
    search: Mapping[str, Any] | None = None,
) -> list[AlignedParam]:
    """A run's params filed by group and own path (see the module docstring).

    ``classes``: {variable: class name} of the run's saved models, for the ``class`` row
    of a model that is no pipeline step (its params do not name its class). ``search``:
    the params of the search run this run is a candidate of (a child run stores only its
    candidate's params, ``hgb__learning_rate``, relative to the search's estimator)."""
    if search is not None:
        candidate = _candidate(params, search)
        if candidate is not None:
            return candidate
    plain: list[AlignedParam] = []
    estimators: dict[str, dict[str, Any]] = {}
    best: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        variable, dot, path = key.partition(".")
        if not dot or not variable or not path:
            plain.append(AlignedParam("variables", key, value, key, None))
        elif path.startswith("best."):
            best.setdefault(variable, {})[path[len("best.") :]] = value
        else:
            estimators.setdefault(variable, {})[path] = value
    placed: list[AlignedParam] = []
    if len(estimators.keys() | best.keys()) > 1:  # which model would a row be? their own
        for variable in sorted(estimators.keys() | best.keys()):
            placed += [
                AlignedParam(variable, path, value, f"{variable}.{path}", variable)
                for path, value in estimators.get(variable, {}).items()
            ]
            placed += [
                AlignedParam(variable, f"best.{path}", value, f"{variable}.best.{path}", variable)
                for path, value in best.get(variable, {}).items()
            ]
        return placed + plain
    for variable, paths in estimators.items():
        placed += _one_model(variable, paths, best.get(variable), (classes or {}).get(variable))
    # best params of a search whose own params were not recorded
    for variable in best.keys() - estimators.keys():
        placed += [
            AlignedParam("model", path, value, f"{variable}.best.{path}", variable)
            for path, value in best[variable].items()
        ]
    return placed + plain


def _one_model(
    variable: str, paths: Mapping[str, Any], best: Mapping[str, Any] | None, known: str | None
) -> list[AlignedParam]:
    """The params of the run's one model (held in ``variable``), filed by group."""
    shape = _Structure(paths)
    wrapper = "search" if best is not None else variable
    rows: dict[tuple[str, str], AlignedParam] = {}

    def add(path: str, value: Any, stored: str) -> None:
        part, name = shape.place(path)
        group = wrapper if part == "wrapper" else part
        rows[(group, name)] = AlignedParam(group, name, value, stored, variable)

    for path, value in paths.items():
        add(path, value, f"{variable}.{path}")
    for path, value in (best or {}).items():  # the value the model was refitted with
        add(_join(shape.inner(), path), value, f"{variable}.best.{path}")
    if known and not shape.final and ("model", "class") not in rows:
        rows[("model", "class")] = AlignedParam(
            "model", "class", known, f"{variable} (its saved model)", variable
        )
    return list(rows.values())


def _candidate(params: Mapping[str, Any], search: Mapping[str, Any]) -> list[AlignedParam] | None:
    """A search candidate's params filed as its search's best ones would be (``model.
    learning_rate``), with the class of the model it trains; ``None`` when ``search``
    holds no search or the params are not a candidate's (a dotted key)."""
    searches = {k.split(".", 1)[0] for k in search if k.split(".", 2)[1:2] == ["best"]}
    if len(searches) != 1 or any("." in k for k in params):
        return None
    (variable,) = searches
    prefix = f"{variable}."
    paths = {k[len(prefix) :]: v for k, v in search.items() if k.startswith(prefix)}
    paths = {k: v for k, v in paths.items() if not k.startswith("best.")}
    shape = _Structure(paths)
    out = []
    for key, value in params.items():
        part, name = shape.place(_join(shape.inner(), key))
        group = "search" if part == "wrapper" else part
        out.append(AlignedParam(group, name, value, key, None))
    if shape.final and shape.final in paths:
        out.append(
            AlignedParam("model", "class", paths[shape.final], f"{prefix}{shape.final}", variable)
        )
    return out
