"""Drift reports: values against scipy, false-alarm and detection rates over seeded
trials, and every awkward input the issue names."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst
from scipy.spatial.distance import jensenshannon

import jupyter_mlops as mlops
from jupyter_mlops.errors import ValidationError
from jupyter_mlops.monitoring.drift import (
    Thresholds,
    categorical_drifted,
    drift_report,
    numeric_drifted,
)
from jupyter_mlops.monitoring.stats import categorical_stats, numeric_stats

T = Thresholds()


def naive_psi(ref, cur, bins=10):
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1), method="nearest")[1:-1])
    r = np.histogram(ref, np.concatenate([[-np.inf], edges, [np.inf]]))[0] / len(ref)
    c = np.histogram(cur, np.concatenate([[-np.inf], edges, [np.inf]]))[0] / len(cur)
    r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
    return float(np.sum((c - r) * np.log(c / r)))


@pytest.mark.parametrize("n,m", [(500, 800), (10_000, 10_000), (200_000, 150_000), (3_000, 40_000)])
def test_numeric_statistics_match_scipy(n, m):
    rng = np.random.default_rng(n)
    ref = rng.normal(0, 1, n)
    cur = rng.normal(0.1, 1.2, m)
    s = numeric_stats(ref, cur)
    ks = sst.ks_2samp(ref, cur, method="asymp")
    assert s.ks == pytest.approx(ks.statistic, abs=1e-12)
    # scipy's own asymptotic p-value below 10,000 effective rows, Kolmogorov's limit above
    assert s.ks_pvalue == pytest.approx(ks.pvalue, rel=1e-9 if n < 10_000 else 5e-3, abs=1e-300)
    assert s.wasserstein == pytest.approx(sst.wasserstein_distance(ref, cur), rel=1e-9)
    assert s.wasserstein_norm == pytest.approx(s.wasserstein / ref.std(), rel=1e-12)
    # right-closed bins on the reference's quantiles (histogram bins are left-closed, so
    # compare on data without ties at the edges: continuous draws)
    assert s.psi == pytest.approx(naive_psi(ref, cur), rel=0.02, abs=2e-3)


def test_ties_are_handled_as_scipy_does():
    rng = np.random.default_rng(9)
    ref = rng.integers(0, 5, 3000).astype(float)
    cur = rng.integers(0, 6, 2000).astype(float)
    s = numeric_stats(ref, cur)
    ks = sst.ks_2samp(ref, cur, method="asymp")
    assert s.ks == pytest.approx(ks.statistic, abs=1e-12)
    assert s.wasserstein == pytest.approx(sst.wasserstein_distance(ref, cur), rel=1e-9)


def test_categorical_statistics_match_scipy():
    ref = np.array([500, 300, 200, 0])
    cur = np.array([300, 450, 200, 50])
    s = categorical_stats(ref, cur)
    chi = sst.chi2_contingency(np.vstack([ref[:4], cur[:4]]), correction=False)
    assert s.chi2 == pytest.approx(chi.statistic) and s.chi2_pvalue == pytest.approx(chi.pvalue)
    rp, cp = ref / ref.sum(), cur / cur.sum()
    assert s.jensen_shannon == pytest.approx(jensenshannon(rp, cp, base=2))
    r, c = np.clip(rp, 1e-4, None), np.clip(cp, 1e-4, None)
    assert s.psi == pytest.approx(np.sum((c - r) * np.log(c / r)))


def _categorical_sample(rng, n, shares):
    return rng.choice(len(shares), size=n, p=shares)


SIZES = [500, 10_000, 1_000_000]


@pytest.mark.slow
@pytest.mark.parametrize("n", SIZES)
def test_false_alarms_stay_rare_and_shifts_are_caught(n):
    """200 seeded trials per size: same-distribution samples raise at most 1% false alarms
    per feature; a 0.5 sd mean shift and a 20-point share change are detected in at least
    99% of them (at 500 rows the sampling noise in PSI can hide one in 200)."""
    trials = 200
    rng = np.random.default_rng(12345 + n)
    shares = np.array([0.5, 0.3, 0.2])
    shifted = np.array([0.3, 0.5, 0.2])  # 20 points move between two categories
    num_alarms = cat_alarms = num_hits = cat_hits = 0
    for _ in range(trials):
        ref = rng.normal(10.0, 2.0, n)
        same = rng.normal(10.0, 2.0, n)
        moved = rng.normal(10.0 + 0.5 * 2.0, 2.0, n)
        num_alarms += numeric_drifted(numeric_stats(ref, same), T)
        num_hits += numeric_drifted(numeric_stats(ref, moved), T)
        r = np.bincount(_categorical_sample(rng, n, shares), minlength=3)
        c = np.bincount(_categorical_sample(rng, n, shares), minlength=3)
        s = np.bincount(_categorical_sample(rng, n, shifted), minlength=3)
        cat_alarms += categorical_drifted(categorical_stats(r, c), T)
        cat_hits += categorical_drifted(categorical_stats(r, s), T)
    assert num_alarms / trials <= 0.01 and cat_alarms / trials <= 0.01
    assert num_hits / trials >= 0.99 and cat_hits / trials >= 0.99


@pytest.mark.slow
@pytest.mark.parametrize("n", [500, 10_000])
def test_a_20_feature_report_rarely_raises_a_false_alarm(n):
    trials = 200
    rng = np.random.default_rng(7 + n)
    reports_with_alarm = 0
    for _ in range(trials):
        frames = []
        for _ in range(2):
            data = {f"x{i}": rng.normal(i, 1 + i / 10, n) for i in range(15)}
            data.update(
                {
                    f"c{i}": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
                    for i in range(5)
                }
            )
            frames.append(pd.DataFrame(data))
        reports_with_alarm += bool(drift_report(*frames).drifted)
    assert reports_with_alarm / trials <= 0.05


def test_report_of_a_shifted_frame():
    rng = np.random.default_rng(0)
    n = 5000
    ref = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
            "score": rng.integers(0, 2, n),
        }
    )
    cur = ref.sample(frac=1.0, random_state=1).reset_index(drop=True)
    cur["age"] = cur["age"] + 5  # +0.5 sd
    cur["plan"] = rng.choice(["basic", "plus", "pro", "enterprise"], n, p=[0.3, 0.45, 0.2, 0.05])
    report = mlops.drift(ref, cur, prediction="score")
    assert report.drifted == ["plan", "age"] or set(report.drifted) == {"age", "plan"}
    assert report.dataset_drift is True and report.share == pytest.approx(2 / 3)
    frame = report.to_frame()
    assert list(frame["column"][:2]) == report.drifted and frame["drifted"][:2].all()
    plan = next(c for c in report.columns if c.column == "plan")
    assert plan.test == "chi-square + PSI + Jensen-Shannon" and "chi-square p < 0.001" in plan.rule
    assert plan.new_categories == ["enterprise"] and plan.new_share == pytest.approx(0.05, abs=0.01)
    age = next(c for c in report.columns if c.column == "age")
    assert age.test == "KS + PSI + Wasserstein" and age.out_of_range >= 0
    assert report.prediction is not None and report.prediction.drifted is False
    assert json.loads(json.dumps(report.to_dict()))["drifted"] == report.drifted
    html = report._repr_html_()
    assert ("dataset drift" in html and "enterprise" not in html) or "new categories" in html
    assert report.chart().to_dict()["mark"]["type"] == "bar"
    assert "dataset drift: 2 of 3 features drifted (threshold 50%)" in repr(report)


def test_the_verdict_never_says_no_drift_beside_a_drifted_feature():
    """One drifted feature of five is below the dataset threshold: the badge says that
    exactly, never "no drift" next to the red feature."""
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({f"f{i}": rng.normal(size=2000) for i in range(5)})
    cur = pd.DataFrame({f"f{i}": rng.normal(size=2000) for i in range(5)})
    cur["f3"] += 1.0
    report = mlops.drift(ref, cur)
    assert report.drifted == ["f3"] and report.dataset_drift is False
    sentence = "1 of 5 features drifted (dataset drift threshold of 50% not reached)"
    assert report.verdict() == ("features drifted", sentence)
    html = report._repr_html_()
    assert ">features drifted</span>" in html and sentence in html
    assert "no drift" not in html and "no dataset drift" not in html
    assert sentence in repr(report) and "(f3)" in repr(report)
    calm = mlops.drift(ref, ref.sample(frac=1.0, random_state=2))
    assert calm.verdict() == ("no drift", "no drift: none of 5 features drifted")
    assert ">no drift</span>" in calm._repr_html_()


def test_awkward_inputs_are_reported_never_misleading():
    rng = np.random.default_rng(3)
    n = 400
    ref = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "const": np.ones(n),
            "empty": np.full(n, np.nan),
            "mixed": [1, "a", 2.5, None] * (n // 4),
            "ids": [f"user{i}" for i in range(n)],
            "city": rng.zipf(1.3, n).astype(str),
            "gone": rng.normal(0, 1, n),
            "holes": rng.normal(0, 1, n),
        }
    )
    cur = ref.drop(columns="gone").assign(
        new=1, holes=np.where(rng.random(n) < 0.3, np.nan, ref["holes"])
    )
    cur["ids"] = [f"user{i + n}" for i in range(n)]  # all new, high cardinality
    cur["city"] = rng.zipf(1.3, n).astype(str)  # same distribution, many rare values
    report = drift_report(ref, cur, max_categories=50)
    by = {c.column: c for c in report.columns}
    assert report.missing_in_current == ["gone"] and report.new_in_current == ["new"]
    assert by["x"].drifted is False
    assert by["const"].drifted is False and "constant in the reference" in by["const"].notes
    assert by["empty"].status == "no data" and by["empty"].drifted is None
    assert by["mixed"].kind == "categorical" and "mixed types" in by["mixed"].notes[0]
    assert by["ids"].status == "identifier-like" and by["ids"].drifted is None
    assert any("49 most frequent" in note for note in by["city"].notes)
    assert by["city"].drifted is False
    assert any("missing values 0.0% in the reference" in note for note in by["holes"].notes)
    assert "empty" not in report.drifted

    small = drift_report(ref, cur.iloc[:10])
    assert small.dataset_drift is None and all(c.status != "drifted" for c in small.columns)
    assert {c.status for c in small.columns} <= {"not enough data", "no data"}
    nothing = drift_report(ref, cur.iloc[:0])
    assert nothing.dataset_drift is None and nothing.cur_rows == 0

    with pytest.raises(ValidationError, match="DataFrame"):
        drift_report(ref, [1, 2, 3])
    with pytest.raises(ValidationError, match="Unknown thresholds"):
        drift_report(ref, cur, thresholds={"pvalue": 0.1})
    with pytest.raises(ValidationError, match="Unknown columns"):
        drift_report(ref, cur, columns=["nope"])
    assert drift_report(ref, cur, thresholds={"psi": 0.5}).thresholds.psi == 0.5


def test_drift_takes_data_references(store_dir):
    rng = np.random.default_rng(5)
    mlops.snapshot(pd.DataFrame({"a": rng.normal(0, 1, 1000)}), "train")
    mlops.snapshot(pd.DataFrame({"a": rng.normal(1, 1, 1000)}), "train")
    report = mlops.drift("train@v1", "train@v2")
    assert report.drifted == ["a"]


def test_datetimes_sent_as_iso_text_are_compared_as_datetimes():
    """JSON clients send datetimes as ISO text: parsed the reference's way, the same
    instants are no drift and no new categories, and a real shift is still caught."""
    rng = np.random.default_rng(3)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, 2000), unit="D")
    reference = pd.DataFrame({"signup": days[:1000], "x": rng.normal(size=1000)})
    same = pd.DataFrame(
        {"signup": days[1000:].strftime("%Y-%m-%dT%H:%M:%S.000"), "x": rng.normal(size=1000)}
    )
    report = mlops.drift(reference, same)
    signup = next(c for c in report.columns if c.column == "signup")
    assert signup.kind == "datetime" and signup.status == "ok", signup
    assert signup.new_categories == [] and signup.notes == [] and signup.out_of_range == 0
    # zones are converted: "Z" text against a naive (UTC) reference is the same instants
    zoned = same.assign(signup=(days[1000:]).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert mlops.drift(reference, zoned).drifted == []
    later = same.assign(signup=(days[1000:] + pd.Timedelta(days=45)).strftime("%Y-%m-%d"))
    moved = next(c for c in mlops.drift(reference, later).columns if c.column == "signup")
    assert moved.drifted and moved.out_of_range > 0.5
    garbled = same.assign(signup=["soon"] * 100 + list(same["signup"][100:]))
    noted = next(c for c in mlops.drift(reference, garbled).columns if c.column == "signup")
    assert "100 current values are not dates (read as missing)" in noted.notes
    assert noted.missing_cur == pytest.approx(0.1)
