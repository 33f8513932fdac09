"""Loop metrics: a metric-named variable assigned inside a ``for``/``while`` loop of a
tracked cell records one value per assignment, as a stepped metric (a curve), with no
callback and no ``log_metric``.

How: ``StepRecorder.instrument`` rewrites the cell's syntax tree, adding after each such
assignment (``loss = …``, ``loss, acc = …``, ``total_loss += …``, ``loss: float = …``) a
call that reads the variable and appends its value to an in-memory buffer. The call is
reached through a constant of the compiled code (``bind``), not through a name, so the
cell's namespace holds nothing it would not hold without tracking. The buffer goes to the
run in one batch when the cell ends (``drain``), whatever the outcome: finished, failed
or interrupted.

Rules the rewrite keeps: code inside ``def``/``class``/``lambda``/comprehensions is left
alone (it runs elsewhere, lazily); a loop inside the cell's ``if``/``with``/``try`` counts;
loop variables (``for score in scores``) and a bare number assigned in the loop
(``running_loss = 0.0``, a reset) are not values; a value that is not a real number
(a list, an array, a tensor of several elements) is skipped silently. The step of a value
is the number of values recorded before it for the same name, so nested loops give one
global counter per name (``loss`` per batch: 0 … batches-1 over all epochs; ``val_loss``
per epoch: 0 … epochs-1), without gaps.
"""

from __future__ import annotations

import ast
import math
import numbers
import time
from array import array
from collections.abc import Callable, Collection, Mapping
from types import CodeType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .writer import RunWriter

__all__ = ["StepRecorder", "as_number"]

# A constant no cell can hold: the compiled cell loads it and ``bind`` swaps it for the
# recorder, so the recorder is reached without any name in the user's namespace.
_PLACEHOLDER = "\x00jupyter_mlops.steps.recorder\x00"
_RECORD = "record"


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is one real number (int, float, numpy scalar, 0-d array
    or tensor, through ``.item()``), else None. Never raises."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, float | int):
            return float(value)
        if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
            item = value.item()
            return float(item) if type(item) is float or type(item) is int else None
        if isinstance(value, numbers.Real):
            return float(value)
    except Exception:
        return None
    return None


def _item_if_0d(value: Any) -> float | None:
    """A 0-d array or tensor's number (an array of several values is no metric)."""
    if value.ndim != 0:
        return None
    item = value.item()
    return float(item) if type(item) is float or type(item) is int else None


def _converter(value: Any) -> Callable[[Any], float | None] | None:
    """How values of ``type(value)`` become a float: ``float`` for real-number types
    (numpy scalars included), ``.item()`` for arrays and tensors when 0-d (checked per
    value), None for anything else (a string, a list, a boolean)."""
    if isinstance(value, bool):
        return None
    if hasattr(value, "ndim") and callable(getattr(value, "item", None)):
        # numpy scalars are registered as numbers.Real: float() is cheaper than .item()
        return float if isinstance(value, numbers.Real) else _item_if_0d
    return float if isinstance(value, numbers.Real) else None


def _make_record(values: list[array], times: list[array]) -> Callable[[int, Any], None]:
    """The function the rewritten cell calls: ``record(index_of_name, value)``. Appends to
    preallocated typed arrays (no lock, no I/O); never raises into the cell. How a type
    converts is worked out once per type."""
    now = time.time
    converters: dict[type, Callable[[Any], float | None] | None] = {}
    unknown = object()

    def record(index: int, value: Any) -> None:
        try:
            kind = type(value)
            if kind is float or kind is int:
                values[index].append(value)
            else:
                convert = converters.get(kind, unknown)
                if convert is unknown:
                    convert = converters[kind] = _converter(value)
                if convert is None:
                    return
                number = convert(value)  # type: ignore[operator]
                if number is None:
                    return
                values[index].append(number)
            times[index].append(now())
        except Exception:  # an int too large for a float, a broken .item(): no value
            return

    return record


def _names(target: ast.AST) -> list[str]:
    """The plain names an assignment target binds (starred parts excluded: lists)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _names(elt)]
    return []


def _literal(value: ast.expr | None) -> bool:
    """``0``, ``0.0``, ``-1``, ``(0, 0.0)``: a reset or an initial value, not a measurement."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, int | float)
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub | ast.UAdd):
        return _literal(value.operand)
    if isinstance(value, ast.Tuple | ast.List):
        return all(_literal(v) for v in value.elts)
    return False


class StepRecorder:
    """The loop values of one tracked execution: per metric name, values and timestamps in
    typed arrays, appended to by the rewritten cell and read back by ``drain`` (and by a
    live view from another thread: ``points``)."""

    def __init__(self, wanted: Callable[[str], bool], exclude: Collection[str] = ()):
        self._wanted = wanted
        self._exclude = frozenset(exclude)
        self.names: list[str] = []
        self._index: dict[str, int] = {}
        self._values: list[array] = []
        self._times: list[array] = []
        self.sources: dict[str, str] = {}
        self.record = _make_record(self._values, self._times)
        self._calls = 0
        self._source: str | None = None
        self._written: dict[str, tuple[int, float | None]] = {}  # name: (n, final)

    # -- rewrite ---------------------------------------------------------------------------
    def instrument(self, tree: ast.Module, source: str | None = None) -> bool:
        """Add the recording calls to ``tree`` (in place); whether any was added. ``source``
        (the text ``tree`` was parsed from) gives each metric the expression it came from."""
        before = self._calls
        self._source = source
        tree.body = self._block(tree.body, in_loop=False)
        self._source = None
        return self._calls > before

    def _block(self, stmts: list[ast.stmt], in_loop: bool) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in stmts:
            self._inner(stmt, in_loop)
            out.append(stmt)
            if in_loop:
                out.extend(self._records(stmt))
        return out

    def _inner(self, stmt: ast.stmt, in_loop: bool) -> None:
        """Rewrite the blocks nested in ``stmt``: a loop's body is in a loop; its ``else``
        runs once, as the code around it."""
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return  # runs when called, not as the cell's loop
        if isinstance(stmt, ast.For | ast.AsyncFor | ast.While):
            stmt.body = self._block(stmt.body, in_loop=True)
            stmt.orelse = self._block(stmt.orelse, in_loop)
            return
        for name in ("body", "orelse", "finalbody"):
            block = getattr(stmt, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(stmt, name, self._block(block, in_loop))
        for handler in getattr(stmt, "handlers", None) or ():  # try / try*
            handler.body = self._block(handler.body, in_loop)
        for case in getattr(stmt, "cases", None) or ():  # match
            case.body = self._block(case.body, in_loop)

    def _records(self, stmt: ast.stmt) -> list[ast.stmt]:
        """The recording calls to run right after ``stmt`` (none if it binds no metric)."""
        if isinstance(stmt, ast.Assign):
            if _literal(stmt.value):
                return []
            names = [n for target in stmt.targets for n in _names(target)]
            text = self._text(stmt.value)
        elif isinstance(stmt, ast.AugAssign):
            names = _names(stmt.target)
            text = self._text(stmt)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            if _literal(stmt.value):
                return []
            names = _names(stmt.target)
            text = self._text(stmt.value)
        else:
            return []
        calls: list[ast.stmt] = []
        for name in dict.fromkeys(names):
            if name.startswith("_") or name in self._exclude or not self._wanted(name):
                continue
            index = self._slot(name)
            self.sources[name] = text
            call = ast.Expr(
                ast.Call(
                    func=ast.Attribute(ast.Constant(_PLACEHOLDER), _RECORD, ast.Load()),
                    args=[ast.Constant(index), ast.Name(name, ast.Load())],
                    keywords=[],
                )
            )
            # the assignment's own position: tracebacks, debuggers and line events see
            # the user's line, never one of ours
            for node in ast.walk(call):
                ast.copy_location(node, stmt)
            calls.append(call)
            self._calls += 1
        return calls

    def _text(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self._source, node) if self._source else None
        return text or ast.unparse(node)

    def _slot(self, name: str) -> int:
        index = self._index.get(name)
        if index is None:
            index = self._index[name] = len(self.names)
            self.names.append(name)
            self._values.append(array("d"))
            self._times.append(array("d"))
        return index

    def bind(self, code: CodeType) -> CodeType:
        """``code`` (compiled from an instrumented tree) with the recorder in place of the
        placeholder constant; code objects without it (functions, classes) stay as they are."""
        consts = list(code.co_consts)
        changed = False
        for i, const in enumerate(consts):
            if type(const) is str and const == _PLACEHOLDER:
                consts[i], changed = self, True
            elif isinstance(const, CodeType):
                bound = self.bind(const)
                if bound is not const:
                    consts[i], changed = bound, True
        return code.replace(co_consts=tuple(consts)) if changed else code

    def compile(self, source: str, filename: str) -> CodeType:
        """``source`` compiled for ``exec``, rewritten to record its loops (outside IPython:
        a replay of a tracked cell records the same curves as the cell did)."""
        tree = ast.parse(source, filename)
        if not self.instrument(tree, source):
            return compile(tree, filename, "exec")
        return self.bind(compile(tree, filename, "exec"))

    # -- read back -------------------------------------------------------------------------
    def __len__(self) -> int:
        """How many values were recorded so far, all names together."""
        return sum(len(v) for v in self._values)

    def points(self, name: str, start: int = 0) -> tuple[list[float], list[float]]:
        """(values, timestamps) of ``name`` from step ``start``: a consistent copy, safe to
        take from another thread while the cell appends."""
        index = self._index.get(name)
        if index is None:
            return [], []
        values, times = self._values[index], self._times[index]
        n = min(len(values), len(times))
        return values[start:n].tolist(), times[start:n].tolist()

    def drain(
        self,
        writer: RunWriter,
        ns: Mapping[str, Any],
        finals: Mapping[str, str] | None = None,
    ) -> None:
        """Hand every recorded curve to ``writer`` in one batch. A name the cell logged
        itself with ``log_metric`` keeps only those values (never counted twice). When the
        variable ends the cell holding another number than its last loop value (assigned
        again after the loop), that final value is the metric's value: it closes the curve
        as one more step (``finals`` names the expression it came from)."""
        for index, name in enumerate(self.names):
            values, times = self._values[index], self._times[index]
            n = min(len(values), len(times))
            if n == 0 or writer.has_metric(name):
                continue
            writer.log_metric_steps(name, values[:n], times[:n], source=self.sources.get(name))
            final = as_number(ns.get(name)) if name in ns else None
            last = values[n - 1]
            if final is not None and (final == last or (math.isnan(final) and last != last)):
                final = None
            if final is not None:
                source = (finals or {}).get(name) or self.sources.get(name)
                writer.log_metric(name, final, step=n, source=source)
            self._written[name] = (n, final)

    def curves(self, points: int = 160) -> dict[str, tuple[list[tuple[float, float]], int]]:
        """The curves ``drain`` handed to the run, sampled as ``Run.metric_curve`` samples
        the stored ones: what the run card draws, without reading them back."""
        from ..html import sample_curve

        out = {}
        for name, (n, final) in self._written.items():
            values = self._values[self._index[name]][:n].tolist()
            if final is not None:
                values.append(final)
            out[name] = sample_curve(range(len(values)), values, points)
        return out
