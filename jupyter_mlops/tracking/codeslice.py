"""The code slice of a cell: the earlier executed cells that defined (or changed) each name
the cell reads, transitively, in execution order, so the run can be re-executed in a fresh
namespace."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from .analysis import CellAnalysis, analyze, magic_body

__all__ = ["HistoryCell", "code_slice", "executable", "slice_source", "statements"]


@dataclass(frozen=True)
class HistoryCell:
    """One executed cell: its execution count, Python source, and what the user typed."""

    count: int
    code: str
    raw: str


def executable(cell: HistoryCell) -> str:
    """The Python a history cell ran: a cell magic's body (``%%track``), else its code."""
    body = magic_body(cell.code)
    return body if body is not None else cell.code


def code_slice(
    history: Sequence[HistoryCell], cell: CellAnalysis, provided: frozenset[str] = frozenset()
) -> list[dict[str, object]]:
    """The cells of ``history`` (oldest first, excluding the current one) the cell depends on.

    Walking back from the newest cell, a cell is kept when it binds, or changes in place,
    a name still needed; its own reads then become needed too. A name bound by a kept cell
    without being read there is satisfied, so older definitions of it are dropped.
    Names in ``provided`` (data bound from snapshots on replay) are never looked for.
    """
    needed = set(cell.free) - provided
    kept: list[HistoryCell] = []
    for past in reversed(history):
        info = analyze(past.code)
        if not info.ok:
            continue
        defines = info.binds & needed
        changes = info.mutates & needed
        if not (defines or changes or info.imports_star):
            continue
        kept.append(past)
        needed -= {n for n in defines if n not in info.loads}
        needed |= info.free - provided
    kept.reverse()
    return [{"execution_count": c.count, "source": c.raw, "code": executable(c)} for c in kept]


def statements(history: Sequence[HistoryCell]) -> list[HistoryCell]:
    """Each cell split into its top-level statements (same execution count), so a slice can
    keep ``import pandas`` from a cell while leaving out its ``df = pd.read_csv(...)``."""
    out: list[HistoryCell] = []
    for cell in history:
        code = executable(cell)
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            out.append(cell)
            continue
        lines = code.splitlines(keepends=True)
        for node in tree.body:
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            text = "".join(lines[start - 1 : node.end_lineno])
            out.append(HistoryCell(cell.count, textwrap.dedent(text), text))
    return out


def slice_source(entries: Sequence[dict[str, object]], cell_code: str) -> str:
    """The slice and the cell as one runnable script, with ``# In[n]`` markers."""
    parts = [f"# In[{e['execution_count']}]\n{e['code']}".rstrip() for e in entries]
    parts.append(f"# tracked cell\n{cell_code}".rstrip())
    return "\n\n".join(parts) + "\n"
