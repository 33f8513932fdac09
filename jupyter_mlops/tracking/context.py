"""``track()``: the context manager that records a run from plain Python, with the same
automatic capture as ``%%track`` when the ``with`` block's source can be read."""

from __future__ import annotations

import ast
import linecache
import sys
import textwrap
from collections import ChainMap
from types import FrameType, TracebackType
from typing import Any

from ..store import Store
from .active import ActiveRun, activate
from .capture import CaptureOptions
from .defaults import default_experiment, set_default_experiment
from .session import TrackedExecution

__all__ = ["Track", "default_experiment", "set_default_experiment"]


def _with_body(frame: FrameType) -> str | None:
    """The source of the ``with`` block whose statement is at the frame's current line."""
    filename = frame.f_code.co_filename
    lines = linecache.getlines(filename, frame.f_globals)
    if not lines:
        return None
    line = frame.f_lineno
    key = (filename, line, len(lines), lines[line - 1] if line <= len(lines) else "")
    if key not in _bodies:
        _bodies[key] = _find_body(lines, line)
    return _bodies[key]


_bodies: dict[tuple[str, int, int, str], str | None] = {}


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
        self._frame = frame if body is not None else None
        self._execution = TrackedExecution(
            body or "",
            name=self.name,
            experiment=self.experiment,
            options=self.options,
            tags=self.tags,
            store=self.store,
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
