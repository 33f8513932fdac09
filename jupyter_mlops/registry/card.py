"""The model card: a Markdown page generated from what the registry knows about a version
(purpose, training data with versions and shapes, metrics, params, signature, lineage),
with the parts only a person can write left as prompts. ``model_card`` is the Markdown
(exported whole, to a README or another viewer); ``model_card_html`` the same sections as
the notebook displays them, at its type sizes and with long tables folded."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["CardSource", "model_card", "model_card_html"]


class CardSource(Protocol):
    """What a card is made from: the plain fields of a registered version (a registry
    ``ModelVersion`` has them), so this module needs nothing from the registry service."""

    name: str
    version: int
    run_id: str
    artifact: str
    object_hash: str
    format: str
    flavor: str | None
    signature: dict[str, Any]
    requirements: list[str]
    data: list[dict[str, Any]]
    metrics: dict[str, float]
    params: dict[str, Any]
    description: str | None
    archived: bool
    aliases: list[str]
    created: float
    created_by: str | None


# Characters that make emphasis, code, links, images, headings, tables or strikethrough.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


def _md(value: object) -> str:
    """``value`` as inert Markdown text: HTML escaped, Markdown punctuation backslashed and
    line breaks folded, so a name or value from the store can never add markup, a link or
    a table cell to a card exported to a README or another viewer."""
    if isinstance(value, float):
        value = f"{value:.6g}"
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=True))


def _code(value: object) -> str:
    """``value`` as a Markdown code span (its content is never markup); the fence is longer
    than any run of backticks inside it."""
    text = " ".join(str(value).split())
    fence = "`" * (max((len(r) for r in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if "`" in text else f"{fence}{text}{fence}"


def _code_block(lines: list[str]) -> list[str]:
    body = [" ".join(str(line).split()) for line in lines]
    fence = "`" * max(3, max((len(r) for b in body for r in re.findall("`+", b)), default=0) + 1)
    return [fence, *body, fence]


def model_card(mv: CardSource) -> str:
    """Markdown for ``mv``; renders in the notebook and exports as a file."""
    created = datetime.fromtimestamp(mv.created, UTC).strftime("%Y-%m-%d %H:%M UTC")
    flavor = (mv.flavor or "model").rsplit(".", 1)[-1]
    lines = [
        f"# {_md(mv.name)} — version {mv.version}",
        "",
        f"*{_md(flavor)}* registered {created} by {_md(mv.created_by or 'unknown')}"
        + (f" · aliases: {', '.join(_code(a) for a in mv.aliases)}" if mv.aliases else "")
        + (" · **archived**" if mv.archived else ""),
        "",
        "## Purpose",
        "",
        _md(mv.description)
        if mv.description
        else "_Describe what this model predicts and for whom (mlops.set_description)._",
        "",
        "## Training data",
        "",
    ]
    if mv.data:
        lines += ["| input | version | shape | content hash |", "|---|---|---|---|"]
        for item in mv.data:
            shape = "×".join(str(s) for s in item.get("shape", []))
            lines.append(
                f"| {_md(item['name'])} | {_md(item.get('ref') or '—')} | {_md(shape)} "
                f"| {_code(str(item['content_hash'])[:12])} |"
            )
    else:
        lines.append("_No data inputs were recorded for the training run._")
    lines += ["", "## Metrics", ""]
    if mv.metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {_md(k)} | {_md(v)} |" for k, v in sorted(mv.metrics.items())]
    else:
        lines.append("_No metrics recorded._")
    lines += ["", "## Parameters", ""]
    if mv.params:
        lines += ["| param | value |", "|---|---|"]
        lines += [f"| {_md(k)} | {_md(v)} |" for k, v in sorted(mv.params.items())]
    else:
        lines.append("_No params recorded._")
    lines += ["", "## Signature", ""]
    inputs = mv.signature.get("inputs", [])
    if inputs:
        lines += ["| input column | dtype |", "|---|---|"]
        lines += [f"| {_md(c['name'])} | {_md(c.get('dtype', '?'))} |" for c in inputs]
    outputs = mv.signature.get("outputs", [])
    if outputs:
        out = outputs[0]
        classes = out.get("classes")
        lines += [
            "",
            f"Output: {_code(out.get('name', 'prediction'))} ({_md(out.get('dtype', 'unknown'))})"
            + (f", classes {_md(classes)}" if classes else ""),
        ]
    lines += [
        "",
        "## Lineage",
        "",
        f"- training run: {_code(mv.run_id)}",
        f"- artifact: {_code(mv.artifact)} ({_md(mv.format)}, object {_code(mv.object_hash[:12])})",
    ]
    lines += [f"- data: {_md(d.get('ref') or '#' + str(d['content_hash'])[:12])}" for d in mv.data]
    if mv.requirements:
        lines += ["", "## Requirements", "", *_code_block(mv.requirements)]
    lines += [
        "",
        "## Intended use and limitations",
        "",
        "_Who should use this model, for what, and where it must not be used._",
        "",
    ]
    return "\n".join(lines)


# -- the card in the notebook -------------------------------------------------------------

# Section titles at the notebook's scale (a heading tag would be larger than the notebook's
# own headings, and would land in JupyterLab's table of contents).
_CARD_CSS = """<style>
.mlops-card .mlops-sec{font-weight:600;font-size:12px;margin:10px 0 2px;
 border-bottom:1px solid var(--jp-border-color2,#d0d7de);padding-bottom:1px}
.mlops-card .mlops-prompt{font-style:italic}
</style>"""
_SIGNATURE_ROWS = 8  # as the compact card: the first rows, the rest under "N more"
_TABLE_ROWS = 12


def _rows_html(headers: list[str], rows: list[list[str]], limit: int, code: int = -1) -> str:
    """A table of the first ``limit`` rows, the rest folded under "N more" (column
    ``code`` in a code span); every value escaped."""
    esc = html.escape

    def body(items: list[list[str]]) -> str:
        return "".join(
            "<tr>"
            + "".join(
                f"<td><code>{esc(c)}</code></td>" if i == code else f"<td>{esc(c)}</td>"
                for i, c in enumerate(row)
            )
            + "</tr>"
            for row in items
        )

    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>"
    out = f"<table>{head}{body(rows[:limit])}</table>"
    if len(rows) > limit:
        out += (
            f"<details><summary class=mut>{len(rows) - limit} more</summary>"
            f"<table>{body(rows[limit:])}</table></details>"
        )
    return out


def _value(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def model_card_html(mv: CardSource) -> str:
    """The model card as the notebook shows it: the same sections as ``model_card``, in
    the notebook's type sizes, with long tables folded (the signature after 8 rows)."""
    from ..html import _STYLE

    esc = html.escape
    created = datetime.fromtimestamp(mv.created, UTC).strftime("%Y-%m-%d %H:%M UTC")
    flavor = (mv.flavor or "model").rsplit(".", 1)[-1]
    badges = "".join(
        f"<span class=badge style='background:#0969da'>{esc(a)}</span>" for a in mv.aliases
    )
    if mv.archived:
        badges += "<span class=badge style='background:#57606a'>archived</span>"

    def section(title: str, body: str) -> str:
        return f"<div class=mlops-sec>{esc(title)}</div>{body}"

    def prompt(text: str) -> str:
        return f"<div class='mut mlops-prompt'>{esc(text)}</div>"

    parts = [
        section(
            "Purpose",
            f"<div>{esc(mv.description)}</div>"
            if mv.description
            else prompt("Describe what this model predicts and for whom (mlops.set_description)."),
        )
    ]
    data = [
        [
            str(d["name"]),
            str(d.get("ref") or "—"),
            "×".join(str(s) for s in d.get("shape", [])),
            str(d["content_hash"])[:12],
        ]
        for d in mv.data
    ]
    parts.append(
        section(
            "Training data",
            _rows_html(["input", "version", "shape", "content hash"], data, _TABLE_ROWS, code=3)
            if data
            else prompt("No data inputs were recorded for the training run."),
        )
    )
    metrics = [[k, _value(v)] for k, v in sorted(mv.metrics.items())]
    parts.append(
        section(
            "Metrics",
            _rows_html(["metric", "value"], metrics, _TABLE_ROWS)
            if metrics
            else prompt("No metrics recorded."),
        )
    )
    params = [[k, _value(v)] for k, v in sorted(mv.params.items())]
    parts.append(
        section(
            "Parameters",
            _rows_html(["param", "value"], params, _TABLE_ROWS, code=1)
            if params
            else prompt("No params recorded."),
        )
    )
    inputs = [[str(c["name"]), str(c.get("dtype", "?"))] for c in mv.signature.get("inputs", [])]
    signature = (
        _rows_html(["input column", "dtype"], inputs, _SIGNATURE_ROWS, code=1) if inputs else ""
    )
    outputs = mv.signature.get("outputs", [])
    if outputs:
        out = outputs[0]
        classes = out.get("classes")
        signature += (
            f"<div>Output: <code>{esc(str(out.get('name', 'prediction')))}</code> "
            f"({esc(str(out.get('dtype', 'unknown')))})"
            + (f", classes {esc(str(classes))}" if classes else "")
            + "</div>"
        )
    parts.append(
        section(
            f"Signature ({len(inputs)} input{'' if len(inputs) == 1 else 's'})",
            signature or prompt("No signature recorded."),
        )
    )
    lineage = [
        f"training run: <code>{esc(mv.run_id)}</code>",
        f"artifact: <code>{esc(mv.artifact)}</code> ({esc(mv.format)}, object "
        f"<code>{esc(mv.object_hash[:12])}</code>)",
        *(f"data: {esc(str(d.get('ref') or '#' + str(d['content_hash'])[:12]))}" for d in mv.data),
    ]
    items = "".join(f"<li>{item}</li>" for item in lineage)
    parts.append(section("Lineage", f"<ul style='margin:2px 0;padding-left:18px'>{items}</ul>"))
    if mv.requirements:
        reqs = esc("\n".join(mv.requirements))
        summary = f"{len(mv.requirements)} requirement{'' if len(mv.requirements) == 1 else 's'}"
        parts.append(
            section(
                "Requirements",
                f"<details><summary class=mut>{summary}</summary>"
                f"<pre style='margin:2px 0'>{reqs}</pre></details>",
            )
        )
    parts.append(
        section(
            "Intended use and limitations",
            prompt("Who should use this model, for what, and where it must not be used."),
        )
    )
    return (
        _STYLE
        + _CARD_CSS
        + "<div class=mlops-card><div class=hd>"
        + f"<span class=nm>{esc(mv.name)} — version {mv.version}</span>{badges}"
        + f"<span class=mut>{esc(flavor)} · registered {esc(created)} by "
        + f"{esc(mv.created_by or 'unknown')}</span></div>"
        + "".join(parts)
        + "</div>"
    )
