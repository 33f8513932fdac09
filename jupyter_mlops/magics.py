"""IPython interface: ``%load_ext jupyter_mlops``, ``%%track`` and ``%mlops``.

Thin by design: parse the line, run the cell exactly as IPython would, and hand the
code, namespace and outcome to ``TrackedExecution``. No business logic lives here.
"""

from __future__ import annotations

import ast
import io
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

if TYPE_CHECKING:
    from .tracking.session import TrackedExecution
    from .tracking.steps import StepRecorder

__all__ = ["MlopsMagics", "load", "unload"]

_MAX_CAPTURE = 1_000_000


class _Tee(io.TextIOBase):
    """Writes through to the real stream and keeps a bounded copy for the run."""

    def __init__(self, stream: Any):
        self._stream = stream
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        if self._size < _MAX_CAPTURE:
            self._parts.append(text)
            self._size += len(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def getvalue(self) -> str:
        return "".join(self._parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def notebook_path(shell: Any) -> str | None:
    """The notebook the kernel runs, when the frontend told it (JupyterLab, VS Code)."""
    ns = shell.user_ns
    for key in ("__session__", "__vsc_ipynb_file__"):
        value = ns.get(key)
        if isinstance(value, str) and value.endswith(".ipynb"):
            return value
    value = os.environ.get("JPY_SESSION_NAME")
    if value and value.endswith(".ipynb"):
        return value
    return None


def _tags(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


@magics_class
class MlopsMagics(Magics):
    """The jupyter_mlops magics."""

    @magic_arguments()
    @argument("name", nargs="?", default=None, help="Run name (default: the cell's In[n]).")
    @argument("-e", "--experiment", default=None, help="Experiment (default: the notebook's name).")
    @argument("--params", default=None, help="Comma-separated variables to record as params too.")
    @argument("--metrics", default=None, help="Comma-separated variables to record as metrics too.")
    @argument("--tag", action="append", default=[], metavar="K=V", help="Tag the run (repeatable).")
    @argument("--no-data", action="store_true", help="Do not fingerprint data inputs.")
    @argument("--no-model", action="store_true", help="Do not save fitted models.")
    @argument(
        "--no-steps",
        action="store_true",
        help="Run the cell as written: metric-named variables assigned in loops keep only "
        "their final value (no curve).",
    )
    @argument(
        "--register", default=None, metavar="MODEL", help="Register the fitted model as MODEL."
    )
    @argument("--model", default=None, help="With --register: which variable's model.")
    @cell_magic
    def track(self, line: str, cell: str) -> None:
        """Run the cell and record it as a run: params, metrics, data inputs, models, code,
        environment and outcome, with no extra lines.

        Usage::

            %%track [NAME] [-e EXPERIMENT] [--params a,b] [--metrics x,y] [--tag k=v]...
                    [--no-data] [--no-model] [--no-steps] [--register MODEL [--model VAR]]

        Examples::

            %%track baseline
            model = LogisticRegression(C=C).fit(X_train, y_train)
            accuracy = accuracy_score(y_test, model.predict(X_test))
        """
        __tracebackhide__ = True  # IPython hides this frame in tracebacks
        args = parse_argstring(self.track, line)
        if args.register is not None:
            from .registry.references import check_model_name

            try:
                check_model_name(args.register)
            except Exception as exc:
                raise UsageError(str(exc)) from None
            if args.no_model:
                raise UsageError("--register needs the model: drop --no-model.")
        from .tracking.active import activate
        from .tracking.capture import CaptureOptions
        from .tracking.defaults import JOB_ENV, default_experiment
        from .tracking.session import TrackedExecution

        shell = self.shell
        history, count = self._history(cell)
        source = shell.transform_cell(cell)
        tags = _tags(args.tag)
        register = args.register
        if register is not None and os.environ.get(JOB_ENV):
            # In a CI or retraining job, registering is the job's decision, after its gate.
            tags |= {"mlops.register": register, "mlops.register_model": args.model or ""}
            register = None
        execution = TrackedExecution(
            source,
            raw_source=cell,
            name=args.name or f"In[{count}]",
            experiment=args.experiment or default_experiment(),
            options=CaptureOptions(
                params=_names(args.params),
                metrics=_names(args.metrics),
                data=not args.no_data,
                models=not args.no_model,
            ),
            tags=tags,
            notebook=notebook_path(shell),
            history=history,
            steps=not args.no_steps,
        )
        ns = shell.user_ns
        run = execution.start(ns)
        displayed: list[tuple[Any, dict[str, Any]]] = []
        out, err = _Tee(sys.stdout), _Tee(sys.stderr)
        formatter = shell.display_formatter
        had_own_format = "format" in vars(formatter)
        original_format = formatter.format

        def recording_format(obj: Any, *a: Any, **kw: Any) -> Any:
            result = original_format(obj, *a, **kw)
            data = result[0] if isinstance(result, tuple) and result else {}
            displayed.append((obj, data if isinstance(data, dict) else {}))
            return result

        error: BaseException | None = None
        value, has_value = None, False
        try:
            with activate(run):
                sys.stdout, sys.stderr = out, err
                formatter.format = recording_format
                try:
                    value, has_value = self._execute(source, cell, count, execution.steps)
                    if has_value and value is not None and not cell.rstrip().endswith(";"):
                        shell.displayhook(value)
                finally:
                    sys.stdout, sys.stderr = out._stream, err._stream
                    if had_own_format:
                        formatter.format = original_format
                    else:
                        del formatter.format
        except BaseException as exc:
            error = exc
            raise
        finally:
            run_id = execution.end(
                ns,
                error=error,
                stdout=out.getvalue(),
                stderr=err.getvalue(),
                displayed=displayed,
            )
            if run_id is not None:
                version = None
                if register is not None and error is None:
                    version = self._register(run_id, register, args.model)
                self._show_card(run_id, execution)
                if version is not None:
                    from IPython.display import display

                    display(version)

    def _register(self, run_id: str, name: str, model: str | None) -> Any:
        """Register the run's model; when that fails, the reason is kept on the run and
        its card shows it as an error line (a note on stderr is easily missed)."""
        from .errors import MlopsError
        from .registry.service import register
        from .tracking.writer import REGISTER_ERROR_TAG, tag_run

        try:
            return register(run_id, name, model=model)
        except MlopsError as exc:
            why = f"Not registered as {name}: {exc}"
            if model is None and "model=" in str(exc):
                why += f" In %%track, choose it with --register {name} --model VAR."
            try:
                from .store import current_store

                tag_run(current_store(), run_id, REGISTER_ERROR_TAG, why)
            except MlopsError as tag_exc:  # the store cannot be written: say it here then
                print(f"jupyter_mlops: {why} ({tag_exc})", file=sys.stderr)
            return None

    def _history(self, cell: str) -> tuple[list[Any], int]:
        """The cells executed before this one, and this cell's execution count."""
        from .tracking.analysis import magic_body
        from .tracking.codeslice import HistoryCell

        hm = self.shell.history_manager
        parsed, raw = hm.input_hist_parsed, hm.input_hist_raw
        n = min(len(parsed), len(raw))
        last, count = n, self.shell.execution_count
        if n > 1 and magic_body(parsed[n - 1]) == cell:
            last = count = n - 1
        cells = [HistoryCell(i, parsed[i], raw[i]) for i in range(1, last) if parsed[i].strip()]
        return cells, count

    def _execute(
        self, source: str, cell: str, count: int, steps: StepRecorder | None = None
    ) -> tuple[Any, bool]:
        """Run the cell's code in the user namespace the way IPython runs a cell (with
        ``steps``: rewritten so that its loops record metric-named variables)."""
        __tracebackhide__ = True
        shell = self.shell
        filename = shell.compile.cache(source, count, raw_code=cell)
        tree = shell.compile.ast_parse(source, filename=filename)
        tree = shell.transform_ast(tree) or tree
        instrumented = steps is not None and steps.instrument(tree, source)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        code = shell.compile(tree, filename, "exec")
        if instrumented and steps is not None:
            code = steps.bind(code)
        exec(code, shell.user_global_ns, shell.user_ns)
        if last is None:
            return None, False
        code = shell.compile(last, filename, "eval")
        return eval(code, shell.user_global_ns, shell.user_ns), True

    def _show_card(self, run_id: str, execution: TrackedExecution) -> None:
        from IPython.display import display

        from .errors import MlopsError

        try:
            display(execution.result(run_id))
        except MlopsError as exc:
            print(f"jupyter_mlops: run {run_id[:8]} recorded, but cannot be shown: {exc}")

    @magic_arguments()
    @argument("variable", help="The variable holding a DataFrame, Series or ndarray.")
    @argument("--name", default=None, help="Dataset name (default: the variable's name).")
    @argument("-d", "--description", default=None, help="A note kept with the version.")
    @line_magic
    def snapshot(self, line: str) -> Any:
        """Save a variable's data as the next version of a dataset.

        Usage::

            %snapshot customers                 # dataset "customers", next version
            %snapshot df --name churn_train     # explicit dataset name
        """
        args = parse_argstring(self.snapshot, line)
        from . import api

        if args.variable not in self.shell.user_ns:
            raise UsageError(f"No variable named {args.variable!r} in the notebook.")
        from .errors import MlopsError

        try:
            return api.snapshot(
                self.shell.user_ns[args.variable],
                args.name or args.variable,
                description=args.description,
            )
        except MlopsError as exc:
            raise UsageError(str(exc)) from None

    @line_magic
    def mlops(self, line: str) -> Any:
        """``%mlops runs [EXPERIMENT | --all]`` (the runs explorer: this notebook's experiment,
        another one, or every one), ``%mlops registry [MODEL]``,
        ``%mlops data [NAME]`` (datasets,
        or one dataset's history and latest diff), ``%mlops store``, ``%mlops experiment [NAME]``."""
        from . import api

        words = line.split()
        if not words:
            raise UsageError(
                "Usage: %mlops runs [EXPERIMENT | --all] | registry [MODEL] | data [NAME] | store | experiment [NAME]"
            )
        command, rest = words[0], words[1:]
        if command == "runs":
            from .errors import MlopsError
            from .views.runs import runs_view

            name = " ".join(rest) or None
            if name in ("--all", "-a"):
                name = "*"
            try:
                return runs_view(name)
            except MlopsError as exc:
                raise UsageError(str(exc)) from None
        if command == "data":
            return self._data_view(" ".join(rest) or None)
        if command == "registry":
            from .errors import MlopsError
            from .views.registry import registry_view

            try:
                return registry_view(" ".join(rest) or None)
            except MlopsError as exc:
                raise UsageError(str(exc)) from None
        if command == "store":
            from .store import current_store

            print(current_store().describe())
            return None
        if command == "experiment":
            if rest:
                api.set_experiment(" ".join(rest))
            print(f"experiment: {api.get_experiment()}")
            return None
        raise UsageError(
            f"Unknown %mlops command {command!r}: use runs, registry, data, store or experiment."
        )

    def _data_view(self, name: str | None) -> Any:
        """``%mlops data``: the datasets; ``%mlops data NAME``: its history and latest diff."""
        import html

        from IPython.display import HTML

        from .data.diff import data_diff
        from .data.versions import data_history, datasets
        from .errors import MlopsError

        try:
            if name is None:
                return datasets()
            history = data_history(name)
        except MlopsError as exc:
            raise UsageError(str(exc)) from None
        shown = history.drop(columns=["content_hash"]).assign(hash=history.content_hash.str[:12])
        page = f"<h4>{html.escape(name)}: {len(history)} version(s)</h4>" + shown.to_html(
            index=False
        )
        if len(history) >= 2:
            page += data_diff(history.ref.iloc[1], history.ref.iloc[0])._repr_html_()
        return HTML(page)


def _warm_up() -> None:
    """Import what the first tracked cell needs, off the main thread."""
    try:
        import sqlalchemy
        import sqlalchemy.dialects.sqlite  # noqa: F401

        from .data import versions  # noqa: F401
        from .tracking import capture, environment, record, session, writer  # noqa: F401

        environment._module_to_dists()
        from .importgate import serialized_imports

        with serialized_imports():  # the user's cell may import scikit-learn meanwhile
            from .tracking.skops_import import skops_io

            skops_io()

        environment.imported_packages()  # caches the versions of what is loaded so far
        _warm_launcher()
    except Exception:
        pass


def _warm_launcher() -> None:
    """In a project that already has registered models, start the store's serving launcher
    so that the first ``mlops.deploy`` is ready in a fraction of a second."""
    import os

    from .store import current_store
    from .tracking.defaults import JOB_ENV

    if os.environ.get(JOB_ENV):  # a headless CI or retraining kernel deploys nothing
        return
    store = current_store()
    if os.environ.get("MLOPS_LAUNCHER", "1") == "0" or not store.exists:
        return
    import sqlalchemy as sa

    from .store import schema

    with store.read() as conn:
        if conn.execute(sa.select(schema.models.c.model_id).limit(1)).first() is None:
            return
    from .serving.launcher import ensure_launcher, launcher_usable, store_env

    if launcher_usable(store.home):
        ensure_launcher(store.home, store_env(store))


def load(ipython: Any) -> None:
    """Register the magics and print the store and experiment this kernel will use."""
    from .store import current_store
    from .tracking.defaults import default_experiment, experiment_is_set, set_default_experiment

    ipython.register_magics(MlopsMagics)
    if not experiment_is_set():
        nb = notebook_path(ipython)
        set_default_experiment(Path(nb).stem if nb else "default")

    print(f"jupyter_mlops: store {current_store().describe()}; experiment '{default_experiment()}'")
    threading.Thread(target=_warm_up, daemon=True, name="mlops-warm-up").start()


def unload(ipython: Any) -> None:
    """Remove the magics."""
    magics = ipython.magics_manager.magics
    magics["cell"].pop("track", None)
    magics["line"].pop("mlops", None)
    magics["line"].pop("snapshot", None)
