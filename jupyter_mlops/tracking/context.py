"""``track()``: the context manager that records a run from plain Python, with the same
automatic capture as ``%%track`` when the ``with`` block's source can be read."""

from __future__ import annotations

import ast
import linecache
import sys
import textwrap
from collections import ChainMap
from types import CodeType, FrameType, TracebackType
from typing import Any

from ..store import Store
from .active import ActiveRun, activate
from .capture import CaptureOptions
from .defaults import default_experiment, set_default_experiment
from .session import TrackedExecution

__all__ = ["Track", "default_experiment", "set_default_experiment"]


def _with_body(frame: FrameType) -> str | None:
    """The source of the ``with`` block whose statement is at the frame's current line:
    from the file it was read from (a script, a module, a notebook cell), else from the
    ``python -c`` program or a string in scope that compiles to the running code (``exec``
    of a variable)."""
    code = frame.f_code
    filename = code.co_filename
    lines = linecache.getlines(filename, frame.f_globals)
    if lines:
        line = frame.f_lineno
        key = (filename, line, len(lines), lines[line - 1][:200] if line <= len(lines) else "")
        if key not in _bodies:
            _bodies[key] = _find_body(lines, line)
        if _bodies[key] is not None:
            return _bodies[key]
    for text in _candidate_sources(frame):
        if _compiles_to(text, code):
            return _find_body(text.splitlines(keepends=True), frame.f_lineno)
    return None


_bodies: dict[tuple[str, int, int, str], str | None] = {}
_MAX_SOURCE = 5_000_000


def _candidate_sources(frame: FrameType) -> list[str]:
    """Texts that may be the source of the running code: the ``python -c`` program and
    strings held by the frames that led here (the variable an ``exec`` was given)."""
    found: list[str] = []
    argv = getattr(sys, "orig_argv", [])
    if "-c" in argv[1:-1]:
        found.append(argv[argv.index("-c", 1) + 1])
    seen = {id(t) for t in found}
    current: FrameType | None = frame
    for _ in range(30):
        if current is None:
            break
        spaces = [current.f_globals]
        if current.f_locals is not current.f_globals:
            spaces.append(current.f_locals)
        values: list[object] = [v for space in spaces for v in list(space.values())[:5000]]
        values += list(current.f_code.co_consts)
        for value in values:
            if (
                isinstance(value, str)
                and id(value) not in seen
                and 0 < len(value) < _MAX_SOURCE
                and "track" in value
                and "\n" in value
            ):
                seen.add(id(value))
                found.append(value)
        current = current.f_back
    return found


_compiled: dict[tuple[int, str], frozenset[tuple[str, int, bytes]]] = {}


def _compiles_to(text: str, code: CodeType) -> bool:
    """Whether ``text`` compiles to a program holding ``code`` (same name, first line and
    bytecode): only then is it the block's source."""
    key = (hash(text), code.co_filename)
    if key not in _compiled:
        try:
            top = compile(text, code.co_filename, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, TypeError):
            top = None
        signatures: set[tuple[str, int, bytes]] = set()
        stack = [top] if top is not None else []
        while stack:
            item = stack.pop()
            signatures.add((item.co_name, item.co_firstlineno, item.co_code))
            stack.extend(c for c in item.co_consts if isinstance(c, CodeType))
        if len(_compiled) > 64:
            _compiled.clear()
        _compiled[key] = frozenset(signatures)
    return (code.co_name, code.co_firstlineno, code.co_code) in _compiled[key]


def _find_body(lines: list[str], line: int) -> str | None:
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.With | ast.AsyncWith)
            and node.lineno <= line <= node.body[0].lineno
        ):
            start = node.body[0].lineno - 1
            end = node.body[-1].end_lineno or node.body[-1].lineno
            return textwrap.dedent("".join(lines[start:end]))
    return None


NO_SOURCE = (
    "captured from the compiled block: its source text was not available (code run by "
    "exec() of a string that is gone, or read from stdin), so the run records no code and "
    "cannot be replayed; run it from a file to record it"
)
NOTHING = (
    "nothing captured automatically: the block's source text was not available and its "
    "compiled code could not be read; log with run.log_param/log_metric/log_model"
)


class Track:
    """``with mlops.track("name") as run:``; see ``jupyter_mlops.track``."""

    def __init__(
        self,
        name: str | None = None,
        experiment: str | None = None,
        *,
        params: list[str] | None = None,
        metrics: list[str] | None = None,
        data: bool = True,
        models: bool = True,
        tags: dict[str, str] | None = None,
        capture: bool = True,
        store: Store | None = None,
    ):
        self.name = name or "run"
        self.experiment = experiment or default_experiment()
        self.options = CaptureOptions(list(params or []), list(metrics or []), data, models)
        self.tags = tags or {}
        self.capture = capture
        self.store = store
        self._frame: FrameType | None = None
        self._execution: TrackedExecution | None = None
        self._activation: Any = None

    def _namespace(self) -> Any:
        frame = self._frame
        if frame is None:
            return {}
        if frame.f_locals is frame.f_globals:
            return frame.f_globals
        return ChainMap(dict(frame.f_locals), frame.f_globals)

    def __enter__(self) -> ActiveRun:
        frame = sys._getframe(1)
        body = _with_body(frame) if self.capture else None
        analysis = None
        tags = dict(self.tags)
        if self.capture and body is None:
            from .bytecode import block_analysis

            analysis = block_analysis(frame.f_code, frame.f_lasti)
            tags["mlops.capture"] = NO_SOURCE if analysis is not None else NOTHING
        self._frame = frame if body is not None or analysis is not None else None
        self._execution = TrackedExecution(
            body or "",
            name=self.name,
            experiment=self.experiment,
            options=self.options,
            tags=tags,
            store=self.store,
            analysis=analysis,
        )
        run = self._execution.start(self._namespace())
        self._activation = activate(run)
        self._activation.__enter__()
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._execution is not None
        try:
            self._execution.end(self._namespace(), error=exc)
        finally:
            self._activation.__exit__(None, None, None)
            self._frame = None
        return False
