"""``TrackedExecution``: one tracked execution of code, from start to a closed run.

Both interfaces use it: the ``%%track`` magic and the ``mlops.track()`` context manager.
It never raises into the user's code: store failures turn into ``TrackingWarning``s.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import MlopsError
from ..store import Store, current_store
from .active import ActiveRun, warn
from .analysis import CellAnalysis, analyze
from .capture import CaptureOptions, CellCapture, is_metric_name
from .codeslice import HistoryCell, code_slice, executable
from .defaults import JOB_ENV
from .environment import EnvironmentProbe
from .record import Run, get_run
from .steps import StepRecorder
from .writer import RunWriter, save_unsaved

__all__ = ["TrackedExecution", "format_error"]

_MAX_STREAM = 1_000_000


def format_error(exc: BaseException) -> str:
    """The traceback of ``exc`` as text, for the run's ``error`` field."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _why(exc: BaseException) -> str:
    if isinstance(exc, MlopsError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _step_recorder(analysis: CellAnalysis, options: CaptureOptions) -> StepRecorder | None:
    """A recorder for the metric-named variables the code binds in loops; None when there
    are none (the code then runs as written, not rewritten)."""
    extra = set(options.metrics)

    def wanted(name: str) -> bool:
        return name in extra or is_metric_name(name)

    candidates = analysis.loop_binds - analysis.loop_targets
    if not any(wanted(n) for n in candidates if not n.startswith("_")):
        return None
    return StepRecorder(wanted, exclude=analysis.loop_targets)


class TrackedExecution:
    """Set up with the code to run; call ``start`` before it runs and ``end`` after."""

    def __init__(
        self,
        source: str,
        *,
        name: str,
        experiment: str,
        options: CaptureOptions | None = None,
        tags: Mapping[str, str] | None = None,
        store: Store | None = None,
        notebook: str | None = None,
        history: Sequence[HistoryCell] = (),
        raw_source: str | None = None,
        parent_run_id: str | None = None,
        analysis: CellAnalysis | None = None,
        steps: bool = False,
    ):
        self.source = source
        self.raw_source = raw_source if raw_source is not None else source
        self.name = name
        self.experiment = experiment
        self.options = options or CaptureOptions()
        self.tags = dict(tags or {})
        if os.environ.get(JOB_ENV):  # run by a CI or retraining job: the job finds it so
            self.tags["mlops.job"] = os.environ[JOB_ENV]
        self.store = store or current_store()
        self.notebook = notebook
        self.history = history
        self.parent_run_id = parent_run_id
        # ``analysis``: what the code does with names when it was read another way than
        # from its source (``with mlops.track():`` in code whose text is gone)
        self.analysis = analysis if analysis is not None else analyze(source)
        self.capture = CellCapture(self.analysis, self.options, [executable(h) for h in history])
        # ``steps``: the code runs rewritten by ``steps.instrument`` (``%%track`` does it),
        # so metric-named variables assigned in its loops become curves
        self.steps = _step_recorder(self.analysis, self.options) if steps else None
        self.run = ActiveRun(None, name, experiment)
        self._probe: EnvironmentProbe | None = None

    def start(self, ns: Mapping[str, Any]) -> ActiveRun:
        """Fingerprint the inputs and open the run as ``running``."""
        try:
            self.capture.before(ns)
        except Exception as exc:
            warn(f"jupyter_mlops: could not inspect the cell's inputs: {exc}")
        self._probe = EnvironmentProbe()
        save_unsaved()  # runs that ended while the store could not be written
        try:
            writer = RunWriter.start(
                self.store,
                self.name,
                self.experiment,
                parent_run_id=self.parent_run_id,
                source_code=self.raw_source,
                notebook=self.notebook,
                tags=self.tags,
            )
        except Exception as exc:  # the user's cell matters more than its record
            warn(f"jupyter_mlops: the cell runs, but this run is not recorded: {_why(exc)}")
            writer = None
        self.run = ActiveRun(writer, self.name, self.experiment)
        self.run.steps = self.steps
        if writer is not None and self.options.data:
            try:
                self._snapshot_inputs(ns)
            except BaseException:  # Ctrl-C while a large input is being versioned
                try:
                    writer.finish("interrupted", error="Interrupted while versioning inputs.")
                except Exception:
                    pass
                raise
        return self.run

    def _dataset_for(self, name: str, obj: Any) -> str:
        from ..data.versions import provenance

        known = provenance(obj)
        return known[0] if known else f"{self.experiment}/{name}"

    def _snapshot_inputs(self, ns: Mapping[str, Any]) -> None:
        """Version every data input the cell reads (unchanged data costs a lookup)."""
        from ..data.versions import snapshot

        for name, fp in self.capture.inputs.items():
            try:
                version = snapshot(
                    ns[name],
                    self._dataset_for(name, ns[name]),
                    store=self.store,
                    fp=fp,
                    reuse_any=True,
                )
            except Exception as exc:
                warn(f"jupyter_mlops: input {name!r} was not versioned: {_why(exc)}")
                continue
            self.capture.versions[name] = version.version_id

    def _snapshot_outputs(self, ns: Mapping[str, Any], writer: RunWriter) -> list[str]:
        """Version the DataFrames the cell created, with lineage from its inputs."""
        from ..data.fingerprint import fingerprint
        from ..data.versions import snapshot

        problems = []
        inputs = list(self.capture.versions.values())
        seen: set[int] = set()
        for name, frame in self.capture.created_frames(ns).items():
            if id(frame) in seen:  # `alias = clean`: one output under two names
                continue
            seen.add(id(frame))
            try:
                fp = fingerprint(frame)
                version = snapshot(
                    frame,
                    self._dataset_for(name, frame),
                    store=self.store,
                    fp=fp,
                    run_id=writer.run_id,
                    reuse_any=True,
                )
            except Exception as exc:
                problems.append(f"output {name!r} not versioned ({_why(exc)})")
                continue
            writer.log_input(
                name,
                fp.kind,
                fp.content_hash,
                fp.shape,
                fp.columns,
                role="output",
                data_version_id=version.version_id,
            )
            writer.add_lineage(version.version_id, inputs)
        return problems

    def _drain_steps(self, ns: Mapping[str, Any], writer: RunWriter) -> list[str]:
        """The loop curves go to the run before the capture, which then leaves those names
        alone: a value logged with steps is a metric only."""
        if self.steps is None:
            return []
        finals = {a.target: a.source for a in self.analysis.assignments}
        try:
            self.steps.drain(writer, ns, finals)
        except Exception as exc:
            return [f"loop metrics: {_why(exc)}"]
        return []

    def result(self, run_id: str) -> Run:
        """The run this execution recorded, read back, with the loop curves it still holds
        (its card draws them without reading thousands of points back)."""
        run = get_run(run_id, self.store)
        if self.steps is not None:
            run.known_curves.update(self.steps.curves())
        return run

    def end(
        self,
        ns: Mapping[str, Any],
        *,
        error: BaseException | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        displayed: Iterable[tuple[Any, Mapping[str, Any]]] = (),
    ) -> str | None:
        """Capture what the code produced and close the run; returns the run id if recorded."""
        writer = self.run.writer
        if writer is None:
            return None
        status = "finished"
        if isinstance(error, KeyboardInterrupt):
            status = "interrupted"
        elif error is not None:
            status = "failed"
        problems = self._drain_steps(ns, writer)
        problems += self.capture.after(
            ns, writer, displayed=displayed, explicit=self.run.explicit_models
        )
        if self.options.data and error is None:
            problems += self._snapshot_outputs(ns, writer)
        try:
            sliced = code_slice(self.history, self.analysis) if self.history else []
        except Exception as exc:
            problems.append(f"code slice: {exc}")
            sliced = []
        # The cell itself, as Python (IPython syntax transformed), closes the slice: replay
        # runs this, while `code` keeps what the user typed.
        sliced = [
            *sliced,
            {
                "execution_count": None,
                "source": self.raw_source,
                "code": self.source,
                "tracked": True,
            },
        ]
        environment = self._probe.result(self.notebook) if self._probe else None
        finish = {
            "error": format_error(error) if error is not None else None,
            "stdout": (stdout or "")[-_MAX_STREAM:] or None,
            "stderr": (stderr or "")[-_MAX_STREAM:] or None,
            "code_slice": sliced,
            "environment": environment,
        }
        try:
            writer.finish(status, **finish)
        except Exception as exc:
            writer.finish_later(_why(exc), status, **finish)
            warn(
                f"jupyter_mlops: the cell ran, but its run could not be saved: {_why(exc)}. "
                "It is kept in memory and saved with its outcome once the store can be "
                "written again (at the next tracked cell, or when this process exits)."
            )
            return None
        if problems:
            warn("jupyter_mlops: parts of the run were not captured: " + "; ".join(problems))
        return writer.run_id
