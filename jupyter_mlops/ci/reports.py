"""The reports of a CI run: JUnit XML for CI systems (one test case per step and per gate
line) and a Markdown summary for pull-request comments (metrics against the champion:
holdout scores and recorded values, the gate's lines, what was registered and promoted)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from ..retraining.jobs import RetrainingJob

__all__ = ["junit_xml", "markdown_summary"]


def _cases(job: RetrainingJob, notebook: str) -> list[tuple[str, str, str]]:
    """(name, status, message) per step and gate line; status pass, fail or skip."""
    trained = job.run_id is not None
    cases = [
        (
            f"execute {notebook}",
            "pass" if trained else "fail",
            "" if trained else (job.error or "no run"),
        )
    ]
    if job.gate is not None:
        for line in job.gate.lines:
            status = {"PASS": "pass", "FAIL": "fail", "SKIP": "skip"}[line.status]
            cases.append((f"gate: {line.check}", status, line.detail))
    elif trained:
        cases.append(("gate", "fail", job.error or "the gate did not run"))
    if job.spec.get("register"):
        if job.challenger:
            cases.append((f"register {job.model}", "pass", job.challenger))
        else:
            cases.append((f"register {job.model}", "skip", "not registered: the gate failed"))
    if job.spec.get("promote"):
        alias = job.spec["promote"]
        if job.promoted:
            cases.append((f"promote {job.model}@{alias}", "pass", str(job.challenger)))
        else:
            cases.append((f"promote {job.model}@{alias}", "skip", "not promoted"))
    return cases


def junit_xml(job: RetrainingJob, notebook: str) -> str:
    """The run as a JUnit XML document (testsuite ``jupyter-mlops ci``)."""
    cases = _cases(job, notebook)
    elapsed = (job.ended or job.started or 0) - (job.started or 0)
    suite = ET.Element(
        "testsuite",
        name="jupyter-mlops ci",
        tests=str(len(cases)),
        failures=str(sum(c[1] == "fail" for c in cases)),
        skipped=str(sum(c[1] == "skip" for c in cases)),
        errors="0",
        time=f"{max(elapsed, 0):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("job", job.job_id),
        ("model", job.model),
        ("run", job.run_id or ""),
        ("champion", job.champion or ""),
        ("challenger", job.challenger or ""),
        ("holdout", (job.holdout or {}).get("ref", "")),
        ("holdout_hash", (job.holdout or {}).get("content_hash", "")),
        ("holdout_rows", str((job.holdout or {}).get("rows", ""))),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    for name, status, message in cases:
        case = ET.SubElement(suite, "testcase", classname=f"mlops.{job.model}", name=name)
        if status == "fail":
            ET.SubElement(case, "failure", message=message[:500]).text = message
        elif status == "skip":
            ET.SubElement(case, "skipped", message=message[:500])
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "—"


def markdown_summary(job: RetrainingJob, notebook: str) -> str:
    """A Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    passed = job.status == "finished" and bool(job.passed)
    out = [
        f"## {'✅' if passed else '❌'} jupyter-mlops ci: `{notebook}` {'passed' if passed else 'failed'}",
        "",
    ]
    facts = [
        ("model", f"`{job.model}`"),
        ("run", f"`{job.run_id[:8]}`" if job.run_id else "—"),
        ("champion", f"`{job.champion}`" if job.champion else "none yet (first model)"),
    ]
    if job.holdout:
        h = job.holdout
        facts.append(("holdout", f"`{h['ref']}` (#{h['content_hash'][:12]}, {h['rows']:,} rows)"))
    if job.challenger:
        facts.append(("registered", f"`{job.challenger}`"))
    if job.spec.get("promote"):
        alias = job.spec["promote"]
        facts.append(
            ("promoted", f"`{job.model}@{alias}` → `{job.challenger}`" if job.promoted else "no")
        )
    out += [f"- **{k}**: {v}" for k, v in facts]
    if job.error:
        out += ["", f"**Error:** {job.error}"]
    gate = job.gate
    if gate is not None and (gate.scores or gate.recorded):
        out += ["", "| metric | this run | champion | Δ |", "|---|---:|---:|---:|"]
        for values, label in ((gate.scores, "{}"), (gate.recorded, "metrics.{} (recorded)")):
            mine, theirs = values.get("challenger", {}), values.get("champion", {})
            for metric in sorted(set(mine) | set(theirs)):
                a, b = mine.get(metric), theirs.get(metric)
                delta = f"{a - b:+.4f}" if a is not None and b is not None else "—"
                out.append(f"| {label.format(metric)} | {_number(a)} | {_number(b)} | {delta} |")
        if gate.recorded.get("champion"):
            out += [
                "",
                "_Recorded metrics are each run's own value, possibly measured on different "
                "data; scores on the holdout compare both models on the same rows._",
            ]
    if gate is not None:
        out += ["", "**Gate**", ""]
        marks = {"PASS": "✅", "FAIL": "❌", "SKIP": "⏭️"}
        out += [
            f"- {marks[line.status]} {line.status} `{line.check}`"
            + (f" — {line.detail}" if line.detail else "")
            for line in gate.lines
        ]
    return "\n".join(out) + "\n"
