"""Replay: re-execute a run's code slice in a fresh namespace, with each data input bound
to its snapshot (or to other versions), and record the result as a child of the run.

The code replayed is what the kernel executed (the slice taken from its history when the
run was recorded), not the notebook as it reads now. Cells that only produced the data
inputs (reading files or databases) are skipped: the inputs come from their snapshots,
unless ``data="live"`` asks to run them again.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ..errors import MlopsError, NotFoundError, ValidationError
from ..store import Store, current_store
from .active import TrackingWarning, activate
from .analysis import analyze
from .codeslice import HistoryCell, code_slice, statements
from .environment import imported_packages
from .record import Run, get_run
from .session import TrackedExecution
from .steps import StepRecorder

__all__ = ["replay"]


def _bindings(parent: Run, data: Mapping[str, Any] | None, store: Store) -> dict[str, Any]:
    from ..data.fingerprint import data_kind
    from ..data.versions import load_data

    inputs = [i for i in parent.inputs if i["role"] == "input"]
    given = dict(data or {})
    unknown = set(given) - {i["name"] for i in inputs}
    if unknown:
        raise ValidationError(
            f"Run {parent.run_id[:8]} has no data input named {', '.join(sorted(unknown))}; "
            f"its inputs are: {', '.join(i['name'] for i in inputs) or 'none'}."
        )
    bound = {}
    for item in inputs:
        name = item["name"]
        choice = given.get(name, f"#{item['content_hash']}")
        if data_kind(choice) is not None:
            bound[name] = choice
        else:
            try:
                bound[name] = load_data(str(choice), store)
            except NotFoundError as exc:
                raise NotFoundError(
                    f"Input {name!r} of run {parent.run_id[:8]} cannot be bound: {exc}"
                ) from None
    return bound


class _ReplayShell:
    """Stands in for ``get_ipython()`` while replaying: magics and shell commands in the
    slice (``%load_ext``, ``%matplotlib``, ``!pip install``) are environment set-up, not
    computation, so they are skipped."""

    # Magics whose argument is Python to run (timing, capturing): replay runs that code.
    RUNS_CODE = frozenset({"time", "timeit", "capture", "prun", "track"})

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.skipped: list[str] = []

    def run_line_magic(self, name: str, line: str, *args: Any, **kwargs: Any) -> None:
        if name in self.RUNS_CODE:
            exec(compile(line, f"%{name}", "exec"), self.namespace)
            return
        self.skipped.append(f"%{name} {line}".strip())

    def run_cell_magic(self, name: str, line: str, cell: str, *args: Any, **kwargs: Any) -> None:
        if name in self.RUNS_CODE:
            exec(compile(cell, f"%%{name}", "exec"), self.namespace)
            return
        self.skipped.append(f"%%{name} {line}".strip())

    def system(self, command: str, *args: Any, **kwargs: Any) -> None:
        self.skipped.append(f"!{command}")

    getoutput = system

    def __getattr__(self, name: str) -> Any:
        raise MlopsError(
            f"Replay runs outside IPython: the slice calls get_ipython().{name}, which "
            "cannot be replayed. Move that call out of the cells the run depends on."
        )


def _execute(
    code: str, namespace: dict[str, Any], label: str, steps: StepRecorder | None = None
) -> None:
    try:
        compiled = steps.compile(code, label) if steps is not None else compile(code, label, "exec")
        exec(compiled, namespace)
    except NameError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise MlopsError(
            f"Replay cannot resolve the name {missing!r} used in {label}: no earlier cell in "
            "the run's code slice defines it. Pass it as data={...} if it is a data input."
        ) from exc


def _warn_package_drift(parent: Run) -> None:
    recorded = parent.environment.get("packages", {}) if parent.environment else {}
    now = imported_packages()
    drift = [
        f"{name} {version} → {now[name]}"
        for name, version in sorted(recorded.items())
        if name in now and now[name] != version
    ]
    if drift:
        warnings.warn(
            "jupyter_mlops: replaying with package versions that differ from the run's: "
            + ", ".join(drift),
            TrackingWarning,
            stacklevel=3,
        )


def replay(
    run_id: str,
    data: Mapping[str, Any] | str | None = None,
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    store: Store | None = None,
) -> Run:
    """Re-execute run ``run_id`` on its snapshots (or ``data={"df": "name@latest"}``, or
    ``data="live"`` to re-read sources) and return the new run, linked to its parent."""
    store = store or current_store()
    parent = get_run(run_id, store)
    code = parent.executed_code
    if not code:
        raise ValidationError(f"Run {parent.run_id[:8]} recorded no code to replay.")
    live = data == "live"
    if isinstance(data, str) and not live:
        raise ValidationError('data must be a mapping {input name: reference or frame}, or "live".')
    bound = {} if live else _bindings(parent, data if isinstance(data, Mapping) else None, store)
    cell = analyze(code)
    if not cell.ok:
        raise ValidationError(
            f"Run {parent.run_id[:8]}'s code does not parse as Python, so it cannot be "
            "replayed; re-run the cell with %%track to record a replayable run."
        )
    history = [
        HistoryCell(int(c["execution_count"]), str(c["code"]), str(c["source"]))
        for c in parent.code_slice_cells
    ]
    # Statement by statement: a cell's imports run, its reading of a bound input does not.
    cells = code_slice(statements(history), cell, provided=frozenset(bound))
    _warn_package_drift(parent)
    namespace: dict[str, Any] = {"__name__": "__replay__"}
    shell = _ReplayShell(namespace)
    namespace["get_ipython"] = lambda: shell
    namespace.update(bound)  # slice statements may read the inputs (`n = len(df)`)
    for entry in cells:
        label = f"In[{entry['execution_count']}]"
        try:
            _execute(str(entry["code"]), namespace, label)
        except MlopsError:
            raise
        except Exception as exc:
            raise MlopsError(
                f"Replay failed in {label}, a cell the run depends on: {type(exc).__name__}: {exc}"
            ) from exc
    namespace.update(bound)
    execution = TrackedExecution(
        code,
        name=name or f"{parent.name} (replay)",
        experiment=parent.experiment,
        tags={
            **{k: v for k, v in parent.tags.items() if not k.startswith("mlops.")},
            "replay_of": parent.run_id,
            "data": "live" if live else "snapshots",
            **(tags or {}),
        },
        store=store,
        history=history,
        parent_run_id=parent.run_id,
        steps=True,  # the loops record their curves, as the cell did under %%track
    )
    run = execution.start(namespace)
    error: BaseException | None = None
    try:
        with activate(run):
            _execute(code, namespace, "the tracked cell", execution.steps)
    except BaseException as exc:
        error = exc
        raise
    finally:
        execution.end(namespace, error=error)
    if run.run_id is None:
        raise MlopsError("The replay ran, but its run could not be recorded (see the warning).")
    return get_run(run.run_id, store)
