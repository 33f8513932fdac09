"""What small results show in a notebook: the deployments ``undeploy`` stopped, the monitor
``set_monitor`` set, the alerts table, and the model card."""

from __future__ import annotations

import re
import time

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import ValidationError
from jupyter_mlops.serving.launcher import stop_launcher

from .conftest import run_cell
from .serving_helpers import processes_mentioning, register_churn
from .test_monitoring import serve_rows


@pytest.fixture
def churn(store_dir):
    x, (model,) = register_churn(1)
    yield x, model
    for d in mlops.deployments().itertuples():  # never leave a server behind
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


@pytest.mark.slow
def test_undeploy_shows_the_stopped_deployments_as_cards(churn):
    d = mlops.deploy("churn@production")
    stopped = mlops.undeploy("churn@production")
    # still the list it was: iterate, index, count
    assert isinstance(stopped, list) and len(stopped) == 1
    assert [s.deployment_id for s in stopped] == [d.deployment_id]
    assert stopped[0].status == "stopped"
    page = stopped._repr_html_()
    assert "Stopped 1 deployment (churn@production)" in page
    assert "mlops-card" in page and d.deployment_id in page and ">stopped</span>" in page
    assert "Try it" not in page and "curl" not in page  # nothing answers a stopped one
    assert "<Deployment" not in page
    assert d.deployment_id in repr(stopped) and repr(stopped).startswith("Stopped 1")
    with pytest.raises(mlops.MlopsError, match="No active deployment"):
        mlops.undeploy("churn@production")


def test_set_monitor_shows_what_was_set(churn):
    got = []
    config = mlops.set_monitor(
        "churn",
        window="2h",
        min_rows=150,
        thresholds={"psi": 0.2},
        checks=["accuracy >= 0.85", "f1 >= 0.8"],
        webhook="http://127.0.0.1:9/hook",
        callback=got.append,
        every="30m",
    )
    page = config._repr_html_()
    for fragment in (
        "Monitor of churn@production",
        "the last 2h, judged once it holds 150 rows",
        "accuracy &gt;= 0.85",
        "f1 &gt;= 0.8",
        "the model version&#x27;s training data",
        "30m",
        "http://127.0.0.1:9/hook",
        "list.append",
    ):
        assert fragment in page, fragment
    rows = dict(re.findall(r"<tr><td>(\w+)</td><td><code>([^<]*)</code></td></tr>", page))
    assert rows["psi"] == "0.2"  # the one set
    assert rows["ks_pvalue"] == "0.001 (default)"  # the rest, each with its default
    text = repr(config)
    assert text.startswith("<Monitor churn@production: window 2h (>= 150 rows)")
    assert "accuracy >= 0.85, f1 >= 0.8" in text and "psi=0.2" in text and "every 30m" in text
    # a refused monitor leaves the one set as it was
    with pytest.raises(ValidationError, match="min_rows"):
        mlops.set_monitor("churn", min_rows=0)
    from jupyter_mlops.monitoring.monitor import get_monitor

    kept = get_monitor("churn")
    assert (kept.window, kept.min_rows, kept.checks) == ("2h", 150, config.checks)
    assert "the last 2h" in kept._repr_html_()


def test_the_alerts_table_shows_whole_messages(churn):
    x, model = churn
    mlops.set_monitor("churn@production", window=300, min_rows=100)
    shifted = x.sample(300, replace=True, random_state=1).reset_index(drop=True)
    shifted["radius"] = shifted["radius"] + x["radius"].std()
    serve_rows(shifted, model, time.time(), "a")
    assert mlops.check("churn").state == "alert"
    table = mlops.alerts("churn")[["kind", "subject", "status", "message", "occurrences"]]
    long = [m for m in table["message"] if len(m) > 50]
    assert long, list(table["message"])  # pandas would cut these at 50 characters
    page, text = table._repr_html_(), repr(table)
    for message in long:
        assert message in page or message.replace("<", "&lt;").replace(">", "&gt;") in page
        assert message in text
    assert "..." not in page
    assert type(table.head(1)).__name__ == "AlertsFrame"  # slices keep it


def test_the_model_card_reads_at_the_notebooks_scale(ip):
    setup = (
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "df = load_breast_cancer(as_frame=True).frame\n"
        "X, y = df.drop(columns='target'), df.target\n"
        "X = (X - X.mean()) / X.std()\n"
    )
    assert run_cell(ip, setup).success
    cell = "%%track --register cancer\nmodel = LogisticRegression(C=0.5).fit(X, y)\n"
    assert run_cell(ip, cell).success
    mlops.set_alias("cancer", "production", 1)
    card = mlops.get_model_version("cancer@production").card()
    page = card._repr_html_()
    # no heading tags (larger than the notebook's own, and listed in its contents)
    assert not re.search(r"<h[1-6]", page)
    sections = re.findall(r"<div class=mlops-sec>([^<]+)</div>", page)
    assert sections[:5] == [
        "Purpose",
        "Training data",
        "Metrics",
        "Parameters",
        "Signature (30 inputs)",
    ]
    assert sections[-3:] == ["Lineage", "Requirements", "Intended use and limitations"]
    # the 30 signature rows: 8 shown, the rest folded as the compact card folds them
    signature = page.split("Signature (30 inputs)")[1].split("mlops-sec")[0]
    shown, folded = signature.split("<details>")
    assert shown.count("<tr><td>") == 8 and "mean radius" in shown
    assert "22 more</summary>" in folded and folded.count("<tr><td>") == 22
    assert "worst fractal dimension" in folded
    assert "cancer — version 1" in page and ">production</span>" in page
    # the Markdown is unchanged, for export: every row there
    assert card._repr_markdown_() == str(card) and str(card).startswith("# cancer — version 1")
    assert str(card).split("## Signature")[1].split("##")[0].count("| float64 |") == 30


def test_the_model_card_escapes_every_value_in_the_notebook_too(store_dir):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    evil = "<img src=x onerror=alert(1)>"
    frame = pd.DataFrame({evil: [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    with mlops.track("html") as run:
        model = LogisticRegression().fit(frame, [0, 1, 0, 1])
        mlops.log_param(evil, evil)
        mlops.log_metric(f"acc{evil}", 0.5)
    mv = mlops.register(run.run_id, "cards", description=evil)
    assert model.n_features_in_ == 2
    page = mv.card()._repr_html_()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
