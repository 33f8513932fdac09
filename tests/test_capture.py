"""What a tracked block captures: one model per fitted object (an explicit ``log_model`` of
a captured model is that model, under the explicit name), and the same capture however the
block runs (a script file, ``python -c``, ``exec``), checked in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import jupyter_mlops as mlops

from .conftest import run_cell

REPO = Path(__file__).resolve().parents[1]


def _frame():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x.iloc[:, :6], y


def test_log_model_of_a_captured_model_saves_it_once_under_the_explicit_name(store_dir):
    from sklearn.ensemble import RandomForestClassifier

    X, y = _frame()
    with mlops.track("forest") as run:
        forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
        mlops.log_model(forest, "forest_model")
    recorded = mlops.get_run(run.run_id)
    assert [m["name"] for m in recorded.models] == ["forest_model"]
    (model,) = recorded.models
    # it is the captured model: the signature of the data it was fitted on, fit names
    assert model["signature"]["inputs"][0] == {"name": str(X.columns[0]), "dtype": "float64"}
    assert model["signature"]["outputs"][0]["target"] == "target"
    assert model["fit"] == {"x": "X", "y": "y"}
    assert recorded.params["forest.n_estimators"] == 5
    mv = mlops.register(run.run_id, "forest")  # no model= needed: one model
    assert mv.version == 1 and mv.artifact == "forest_model"
    loaded = mlops.load_model("forest@1")
    assert (loaded.predict(X) == forest.predict(X)).all()


def test_log_model_in_a_track_cell_saves_it_once(ip):
    run_cell(
        ip,
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "import jupyter_mlops as mlops\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)\n",
    )
    result = run_cell(
        ip,
        "%%track iris\n"
        "clf = LogisticRegression(max_iter=500).fit(X, y)\n"
        "mlops.log_model(clf)\n"
        "same_model = clf\n",  # one object under two names: one model
    )
    assert result.success, result.error_in_exec
    (row,) = mlops.runs().itertuples()
    run = mlops.get_run(row.run_id)
    assert [m["name"] for m in run.models] == ["model"]
    assert run.models[0]["fit"] == {"x": "X", "y": "y"}
    assert mlops.register(run.run_id, "iris").artifact == "model"


def test_a_model_refitted_after_log_model_is_a_second_model(store_dir):
    from sklearn.linear_model import LogisticRegression

    X, y = _frame()
    with mlops.track("two") as run:
        clf = LogisticRegression(max_iter=5000).fit(X.iloc[:, :3], y)
        mlops.log_model(clf, "first")
        clf.fit(X, y)  # a different model now: the captured one is this
    recorded = mlops.get_run(run.run_id)
    by_name = {m["name"]: m for m in recorded.models}
    assert set(by_name) == {"first", "clf"}
    assert len(by_name["first"]["signature"]["inputs"]) == 3
    assert len(by_name["clf"]["signature"]["inputs"]) == 6
    assert recorded.load_model("first").n_features_in_ == 3


SCRIPT = textwrap.dedent(
    """\
    import jupyter_mlops as mlops
    from sklearn.datasets import load_iris
    from sklearn.metrics import accuracy_score
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    depth = 3
    with mlops.track("tree") as run:
        clf = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
        accuracy = accuracy_score(y, clf.predict(X))
        train_score = clf.score(X, y)
        for step in range(3):
            mlops.log_metric("curve", step * 0.5, step=step)
        print("trained")
    print("RUN", run.run_id)
    """
)

IN_FUNCTION = textwrap.dedent(
    """\
    import jupyter_mlops as mlops
    from sklearn.datasets import load_iris
    from sklearn.metrics import accuracy_score
    from sklearn.tree import DecisionTreeClassifier

    def train(depth):
        X, y = load_iris(return_X_y=True, as_frame=True)
        with mlops.track("tree") as run:
            clf = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
            accuracy = accuracy_score(y, clf.predict(X))
            train_score = clf.score(X, y)
            for step in range(3):
                mlops.log_metric("curve", step * 0.5, step=step)
        return run

    print("RUN", train(3).run_id)
    """
)


def _run_python(store_dir: Path, tmp_path: Path, args: list[str], stdin: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["MLOPS_HOME"] = str(store_dir)
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RUN ")]
    return mlops.get_run(line.split()[1]), done


def _captured(run) -> dict:
    models = run.models
    return {
        "status": run.status,
        "params": {k: v for k, v in run.params.items() if k in {"depth", "clf.max_depth"}},
        "metrics": sorted(run.metrics),
        "metric_values": {k: round(v, 6) for k, v in run.metrics.items()},
        "inputs": sorted((i["name"], i["content_hash"]) for i in run.inputs),
        "models": [(m["name"], m.get("fit"), json.dumps(m["signature"])) for m in models],
    }


@pytest.mark.parametrize("program", [SCRIPT, IN_FUNCTION], ids=["module", "function"])
def test_capture_is_the_same_however_the_block_runs(store_dir, tmp_path, program):
    script = tmp_path / "train.py"
    script.write_text(program)
    ways = {
        "script file": (["train.py"], None),
        "python -c": (["-c", program], None),
        "exec of a variable": (["-c", "code = open('train.py').read()\nexec(code)"], None),
        "exec of a compiled string": (
            ["-c", "ns = {}\nexec(compile(open('train.py').read(), 'train', 'exec'), ns)"],
            None,
        ),
        "stdin": (["-"], program),
    }
    results = {}
    for way, (args, stdin) in ways.items():
        run, done = _run_python(store_dir, tmp_path, args, stdin)
        results[way] = (run, done)
    reference = _captured(results["script file"][0])
    assert reference["models"][0][:2] == ("clf", {"x": "X", "y": "y"})
    assert reference["params"] == {"depth": 3, "clf.max_depth": 3}
    assert reference["metrics"] == ["accuracy", "curve", "train_score"]
    assert [name for name, _ in reference["inputs"]] == ["X", "y"]
    for way, (run, done) in results.items():
        assert _captured(run) == reference, way
        assert "TrackingWarning" not in done.stderr, (way, done.stderr)
    # the block's code is recorded wherever its text could be found
    for way in ("script file", "python -c", "exec of a variable"):
        assert "DecisionTreeClassifier(max_depth=depth" in results[way][0].code, way


def test_a_block_whose_text_is_gone_is_captured_and_says_why_its_code_is_missing(
    store_dir, tmp_path
):
    """``exec(open(path).read())``: the text lives only while exec runs, nowhere to be read
    back; the capture works from the compiled block, and the run says its code is missing."""
    (tmp_path / "train.py").write_text(SCRIPT)
    reference, _ = _run_python(store_dir, tmp_path, ["train.py"])
    run, done = _run_python(store_dir, tmp_path, ["-c", "exec(open('train.py').read())"])
    assert _captured(run) == _captured(reference)
    assert run.code in (None, "")
    note = run.tags["mlops.capture"]
    assert "source" in note and "replay" in note
    assert "mlops.capture" not in reference.tags
    assert "TrackingWarning" not in done.stderr


def test_a_block_that_cannot_be_read_at_all_says_why_nothing_was_captured(store_dir, tmp_path):
    """A one-line block run from a string that is gone: neither its text nor its own
    instructions can be told apart, so the run says why nothing was captured."""
    one_line = SCRIPT.split('with mlops.track("tree")')[0] + (
        'with mlops.track("tree") as run: clf = DecisionTreeClassifier().fit(X, y)\n'
        'print("RUN", run.run_id)\n'
    )
    (tmp_path / "one.py").write_text(one_line)
    from_file, _ = _run_python(store_dir, tmp_path, ["one.py"])
    assert [m["name"] for m in from_file.models] == ["clf"]  # its text: captured
    run, _ = _run_python(store_dir, tmp_path, ["-c", "exec(open('one.py').read())"])
    assert run.status == "finished" and run.models == []
    assert run.tags["mlops.capture"].startswith("nothing captured automatically")
    assert "log_model" in run.tags["mlops.capture"]


BLOCKS = {
    "fit and metrics": (
        "clf = DecisionTreeClassifier(max_depth=depth).fit(X, y)\n"
        "accuracy = accuracy_score(y, clf.predict(X))\n"
        "score = clf.score(X, y)\n"
    ),
    "fit as a statement": "clf = DecisionTreeClassifier()\nclf.fit(X, y)\nX.dropna(inplace=True)\n",
    "loops and unpacking": (
        "total = 0\n"
        "for i, value in enumerate(values):\n"
        "    total += value\n"
        "    last = i\n"
        "a, b = split(X)\n"
        "squares = [v * v for v in values if v > limit]\n"
        "f = lambda: offset + 1\n"
    ),
    "state rebound in a while loop": (
        "w = 0.0\n"
        "loss = 1.0\n"
        "while loss > tol:\n"
        "    grad = 2 * (w - 1.0)\n"
        "    w = w - lr * grad\n"
        "    loss = (w - 1.0) ** 2\n"
        "    steps += 1\n"
        "final = w\n"
    ),
    "imports and attributes": (
        "import math\nfrom sklearn import metrics\nr2 = metrics.r2_score(y, pred)\n"
        "clf = models.tree.fit(data.X, data.y)\n"
    ),
}


@pytest.mark.parametrize("block", list(BLOCKS), ids=list(BLOCKS))
def test_the_compiled_block_reads_like_its_source(block):
    """What the bytecode reader finds equals what the source analysis finds."""
    import ast as _ast

    from jupyter_mlops.tracking.analysis import analyze
    from jupyter_mlops.tracking.bytecode import block_analysis

    class Enter:
        def __enter__(self):
            frame = sys._getframe(1)
            self.found = block_analysis(frame.f_code, frame.f_lasti)
            raise KeyboardInterrupt  # stop before the body runs: its names are not defined

        def __exit__(self, *exc):
            return False

    body = BLOCKS[block]
    program = "with probe as run:\n" + textwrap.indent(body, "    ") + "after = 1\n"
    probe = Enter()
    with pytest.raises(KeyboardInterrupt):
        exec(compile(program, "<gone>", "exec"), {"probe": probe})
    got, want = probe.found, analyze(body)
    assert got is not None
    assert got.free == want.free
    # (a comprehension's variable does not outlive it: only the source analysis lists it)
    comprehension = {
        n.id
        for c in _ast.walk(_ast.parse(body))
        if isinstance(c, _ast.comprehension)
        for n in _ast.walk(c.target)
        if isinstance(n, _ast.Name)
    }
    assert got.binds == want.binds - comprehension and "after" not in got.binds
    assert got.loop_targets == want.loop_targets
    assert got.loop_binds - comprehension == want.loop_binds - comprehension
    assert [a.target for a in got.assignments] == [a.target for a in want.assignments]

    def fits(analysis):
        return [
            (f.owner, f.x and _ast.unparse(f.x), f.y and _ast.unparse(f.y))
            for f in analysis.fit_calls
        ]

    assert fits(got) == fits(want)
    assert got.mutates == want.mutates
