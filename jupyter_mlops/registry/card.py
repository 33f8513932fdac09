"""The model card: a Markdown page generated from what the registry knows about a version
(purpose, training data with versions and shapes, metrics, params, signature, lineage),
with the parts only a person can write left as prompts."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["CardSource", "model_card"]


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
