"""The model registry through the Python API, %%track --register, and several processes."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import (
    ConflictError,
    CorruptObjectError,
    MlopsError,
    NotFoundError,
    ValidationError,
)
from jupyter_mlops.tracking.modelio import load_model_bytes

from .conftest import run_cell

REPO = Path(__file__).resolve().parents[1]
SETUP = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
df = load_breast_cancer(as_frame=True).frame
X, y = df.drop(columns="target"), df.target
features = X.columns
X = (X - X.mean()) / X.std()
"""


def train(ip, name: str, c: float, *options: str) -> str:
    code = f"%%track {name} {' '.join(options)}\nmodel = LogisticRegression(C={c}).fit(X, y)\naccuracy = model.score(X, y)"
    assert run_cell(ip, code).success
    return mlops.runs(filter=f"name = '{name}'").run_id[0]


def test_register_alias_load_and_list(ip):
    run_cell(ip, SETUP)
    first = train(ip, "small", 0.01)
    assert run_cell(
        ip,
        "%%track big --register churn\nmodel = LogisticRegression(C=10.0).fit(X, y)\naccuracy = model.score(X, y)",
    ).success
    v1 = mlops.register(first, "churn", description="regularized")
    assert (v1.ref, v1.run_id) == ("churn@2", first)
    assert mlops.get_model_version("churn@1").params["model.C"] == 10.0
    # what a version records
    assert v1.signature["inputs"][0] == {"name": "mean radius", "dtype": "float64"}
    assert any(r.startswith("scikit-learn==") for r in v1.requirements)
    assert v1.data[0]["name"] in {"X", "y"} and v1.data[0]["ref"].startswith("default/")
    assert v1.metrics["accuracy"] > 0.9
    # aliases
    mlops.set_alias("churn", "production", 1, reason="first launch")
    mlops.set_alias("churn", "production", "churn@2", reason="better calibrated")
    mlops.set_alias("churn", "staging", 1)
    prod = mlops.get_model_version("churn@production")
    assert prod.version == 2 and prod.aliases == ["production"]
    loaded = mlops.load_model("churn@production")
    assert (
        loaded.predict(ip.user_ns["X"]) == ip.user_ns["model"].predict(ip.user_ns["X"])
    ).sum() > 0
    assert mlops.load_model("churn@latest").get_params()["C"] == 0.01
    assert mlops.load_model("churn@v1").get_params()["C"] == 10.0
    # listings
    frame = mlops.models()
    assert list(frame.name) == ["churn"] and frame.latest_version[0] == 2
    assert frame.aliases[0] == {"production": 2, "staging": 1}
    versions = mlops.model_versions("churn")
    assert list(versions.version) == [2, 1] and versions.aliases[0] == ["production"]
    assert "metrics.accuracy" in versions.columns
    events = mlops.model_events("churn")
    moved = events[events.kind == "alias_moved"].iloc[0]
    assert (moved.alias, moved.from_version, moved.to_version) == ("production", 1, 2)
    assert moved.reason == "better calibrated" and moved.user
    # the card
    card = prod.card()
    for fragment in (
        "# churn — version 2",
        "## Training data",
        "accuracy",
        "mean radius",
        "Intended use",
        first,
    ):
        assert fragment in card
    assert card._repr_markdown_() == str(card)
    assert "churn@2" in prod._repr_html_() and "production" in prod._repr_html_()


def test_archive_hides_but_keeps_loadable(ip):
    run_cell(ip, SETUP)
    for c in (0.1, 1.0):
        mlops.register(train(ip, f"c{c}", c), "m")
    mlops.set_alias("m", "production", 1)
    with pytest.raises(ConflictError, match="production"):
        mlops.archive("m@1")
    archived = mlops.archive("m@2", reason="leaky feature")
    assert archived.archived
    assert list(mlops.model_versions("m").version) == [1]
    assert list(mlops.model_versions("m", include_archived=True).version) == [2, 1]
    assert mlops.get_model_version("m@latest").version == 1
    assert mlops.load_model("m@2").get_params()["C"] == 1.0
    with pytest.raises(ConflictError, match="archived"):
        mlops.set_alias("m", "staging", 2)
    assert list(mlops.model_events("m").kind) == [
        "registered",
        "registered",
        "alias_set",
        "archived",
    ]


def test_bad_input_changes_nothing(ip):
    run_cell(ip, SETUP)
    assert run_cell(ip, "%%track nomodel\nn = len(X)").success
    nomodel = mlops.runs().run_id[0]
    with pytest.raises(MlopsError, match="saved no model"):
        mlops.register(nomodel, "m")
    assert run_cell(
        ip,
        "%%track two\na = LogisticRegression().fit(X, y)\nb = DecisionTreeClassifier(max_depth=2).fit(X, y)",
    ).success
    two = mlops.runs(filter="name = 'two'").run_id[0]
    with pytest.raises(MlopsError, match="a, b"):
        mlops.register(two, "m")
    good = mlops.register(two, "m", model="b")
    assert good.flavor.endswith("DecisionTreeClassifier")
    for bad_name in ("bad@name", "with space", "a/b", "x#1", ""):
        with pytest.raises(ValidationError):
            mlops.register(two, bad_name, model="a")
    for bad_alias in ("3", "v3", "latest", "LATEST", "a b"):
        with pytest.raises(ValidationError):
            mlops.set_alias("m", bad_alias, 1)
    with pytest.raises(NotFoundError, match="Did you mean: m"):
        mlops.load_model("mm@1")
    with pytest.raises(NotFoundError, match="no version 9"):
        mlops.load_model("m@9")
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        mlops.load_model("m@production")
    assert list(mlops.model_versions("m").version) == [1]
    assert list(mlops.model_events("m").kind) == ["registered"]


def test_register_magic_errors_keep_the_run(ip, capsys):
    run_cell(ip, SETUP)
    result = run_cell(ip, "%%track bad --register 'a b'\nz = 1")
    assert "not a valid model name" in str(result.error_in_exec) and "z" not in ip.user_ns
    assert run_cell(ip, "%%track --register churn\nz = 1").success
    run = mlops.get_run(mlops.runs().run_id[0])
    assert "saved no model" in run.tags["mlops.register_error"]  # on the card, not stderr
    assert "Not registered as churn" in run._repr_html_()
    assert mlops.models().empty and len(mlops.runs()) == 1


def test_corrupt_and_untrusted_artifacts_are_refused(ip, store_dir):
    run_cell(ip, SETUP)
    mv = mlops.register(train(ip, "r", 1.0), "m")
    path = store_dir / "objects" / mv.object_hash[:2] / mv.object_hash[2:]
    original = path.read_bytes()
    path.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(CorruptObjectError):
        mlops.load_model("m@1")
    path.write_bytes(original)
    assert mlops.load_model("m@1").get_params()["C"] == 1.0
    data = pickle.dumps({"weights": [1, 2]})
    with pytest.raises(MlopsError, match="trusted=True"):
        load_model_bytes(data, "pickle")
    assert load_model_bytes(data, "pickle", trusted=True) == {"weights": [1, 2]}


WRITER = textwrap.dedent(
    """
    import sys
    import jupyter_mlops as mlops
    run_id = sys.argv[1]
    for _ in range(15):
        mlops.register(run_id, "shared")
    print("ok")
    """
)


def test_two_processes_get_distinct_versions(ip, store_dir):
    run_cell(ip, SETUP)
    run_id = train(ip, "base", 1.0)
    env = {"MLOPS_HOME": str(store_dir), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, run_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.strip() == "ok", err
    assert sorted(mlops.model_versions("shared").version) == list(range(1, 31))


def test_builtin_functions_are_never_trusted_implicitly():
    from sklearn.preprocessing import FunctionTransformer

    from jupyter_mlops.tracking.modelio import dump_model

    data, fmt = dump_model(FunctionTransformer(func=exec))
    with pytest.raises(MlopsError, match=r"builtins\.exec"):
        load_model_bytes(data, fmt)


def test_registry_view_moves_aliases_and_archives_with_confirmation(ip):
    run_cell(ip, SETUP)
    for c in (0.1, 1.0):
        mlops.register(train(ip, f"c{c}", c), "churn")
    mlops.set_alias("churn", "production", 1)
    result = run_cell(ip, "%mlops registry churn")
    view = result.result
    assert view.model == "churn" and list(view.versions.version) == [2, 1]
    assert "production" in view.versions_html.value and "churn@2" in view.detail.value
    assert "lineage" in view.detail.value and "training run" in view.detail.value
    # move production to version 2: asks first, changes nothing until confirmed
    view.version_select.value = 2
    view.alias_box.value = "production"
    view.reason_box.value = "better recall"
    view.alias_button.click()
    assert view.pending == ("alias", {"alias": "production", "version": 2})
    assert "from churn@1" in view.confirm_text.value and view.confirm_row.layout.display == "flex"
    assert mlops.get_model_version("churn@production").version == 1
    view.confirm_button.click()
    assert mlops.get_model_version("churn@production").version == 2
    moved = mlops.model_events("churn").iloc[-1]
    assert (moved.kind, moved.reason) == ("alias_moved", "better recall")
    assert view.confirm_row.layout.display == "none" and "production → churn@2" in view.status.value
    # archiving the aliased version is refused with the reason shown; nothing changes
    view.archive_button.click()
    view.confirm_button.click()
    assert "move those aliases" in view.status.value
    assert list(mlops.model_versions("churn").version) == [2, 1]
    # cancel leaves things as they were; archiving version 1 works and hides it
    view.version_select.value = 1
    view.archive_button.click()
    view.cancel_button.click()
    assert view.pending is None and list(mlops.model_versions("churn").version) == [2, 1]
    view.archive_button.click()
    view.confirm_button.click()
    assert list(view.versions.version) == [2]
    view.show_archived.value = True
    assert list(view.versions.version) == [2, 1] and "(archived)" in view.versions_html.value
    static = view._repr_html_()
    assert "Model registry" in static and "production→2" in static
    assert "No registered model 'nope'" in str(run_cell(ip, "%mlops registry nope").error_in_exec)


def test_the_model_card_escapes_html_and_markdown_in_every_value(store_dir):
    """A card exported to a README or another viewer renders names and values as text."""
    import mistune
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    evil = "<img src=x onerror=alert(1)>"
    link = "[click](javascript:alert(1))"
    frame = pd.DataFrame({evil: [0.0, 1.0, 2.0, 3.0], "a|b": [1.0, 0.0, 1.0, 0.0]})
    with mlops.track("html") as run:
        model = LogisticRegression().fit(frame, [0, 1, 0, 1])
        mlops.log_param(evil, link)
        mlops.log_param("note", "**bold** `code` | cell")
        mlops.log_metric(f"acc{evil}", 0.5)
    mv = mlops.register(run.run_id, "cards", description=f"{evil} {link}")
    assert model.n_features_in_ == 2
    card = str(mv.card())
    assert "<img" not in card
    rendered = mistune.html(card)
    assert "<img" not in rendered and "<a " not in rendered and "<strong>" not in rendered
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered  # shown as text
    # every table row keeps its two cells, whatever the values hold
    params = card.split("## Parameters")[1].split("##")[0]
    rows = [line for line in params.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows and all(line.count(" | ") == 1 for line in rows[1:])
