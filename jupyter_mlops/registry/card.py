"""The model card: a Markdown page generated from what the registry knows about a version
(purpose, training data with versions and shapes, metrics, params, signature, lineage),
with the parts only a person can write left as prompts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import ModelVersion

__all__ = ["model_card"]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|")


def model_card(mv: ModelVersion) -> str:
    """Markdown for ``mv``; renders in the notebook and exports as a file."""
    created = datetime.fromtimestamp(mv.created, UTC).strftime("%Y-%m-%d %H:%M UTC")
    flavor = (mv.flavor or "model").rsplit(".", 1)[-1]
    lines = [
        f"# {mv.name} — version {mv.version}",
        "",
        f"*{flavor}* registered {created} by {mv.created_by or 'unknown'}"
        + (f" · aliases: {', '.join(f'`{a}`' for a in mv.aliases)}" if mv.aliases else "")
        + (" · **archived**" if mv.archived else ""),
        "",
        "## Purpose",
        "",
        mv.description
        or "_Describe what this model predicts and for whom (mlops.set_description)._",
        "",
        "## Training data",
        "",
    ]
    if mv.data:
        lines += ["| input | version | shape | content hash |", "|---|---|---|---|"]
        for item in mv.data:
            shape = "×".join(str(s) for s in item.get("shape", []))
            lines.append(
                f"| {item['name']} | {item.get('ref') or '—'} | {shape} | `{item['content_hash'][:12]}` |"
            )
    else:
        lines.append("_No data inputs were recorded for the training run._")
    lines += ["", "## Metrics", ""]
    if mv.metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(mv.metrics.items())]
    else:
        lines.append("_No metrics recorded._")
    lines += ["", "## Parameters", ""]
    if mv.params:
        lines += ["| param | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(mv.params.items())]
    else:
        lines.append("_No params recorded._")
    lines += ["", "## Signature", ""]
    inputs = mv.signature.get("inputs", [])
    if inputs:
        lines += ["| input column | dtype |", "|---|---|"]
        lines += [f"| {c['name']} | {c.get('dtype', '?')} |" for c in inputs]
    outputs = mv.signature.get("outputs", [])
    if outputs:
        out = outputs[0]
        classes = out.get("classes")
        lines += [
            "",
            f"Output: `{out.get('name', 'prediction')}` ({out.get('dtype', 'unknown')})"
            + (f", classes {classes}" if classes else ""),
        ]
    lines += [
        "",
        "## Lineage",
        "",
        f"- training run: `{mv.run_id}`",
        f"- artifact: `{mv.artifact}` ({mv.format}, object `{mv.object_hash[:12]}`)",
    ]
    lines += [f"- data: {d.get('ref') or '#' + d['content_hash'][:12]}" for d in mv.data]
    if mv.requirements:
        lines += ["", "## Requirements", "", "```", *mv.requirements, "```"]
    lines += [
        "",
        "## Intended use and limitations",
        "",
        "_Who should use this model, for what, and where it must not be used._",
        "",
    ]
    return "\n".join(lines)
