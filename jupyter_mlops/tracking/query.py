"""The run query language of ``mlops.runs(filter=...)``: parsed into a syntax tree, then
turned into parameterized SQL (values are always bound, never pasted into SQL text).

    metrics.accuracy > 0.8 and params.model.C <= 1 and status = 'finished'
    (tags.team = "growth" or name like 'base%') and not metrics.`f1-score` is null
    params.solver in ('lbfgs', 'saga') and duration_s < 2 * 60

Fields: ``metrics.NAME``, ``params.NAME``, ``tags.NAME`` (NAME may contain dots; quote it
in backticks if it holds other characters) and the run attributes in ``ATTRIBUTES``.
The same tree is reused by metric checks and gates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import QueryError

__all__ = [
    "ATTRIBUTES",
    "And",
    "BinOp",
    "Compare",
    "Field",
    "InList",
    "IsNull",
    "Literal",
    "Node",
    "Not",
    "Or",
    "parse",
    "parse_order",
]

ATTRIBUTES = (
    "run_id",
    "name",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    "parent_run_id",
    "user",
)
NAMESPACES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
}
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "none", "true", "false", "like"}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<quoted>`[^`]+`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|==|=|<|>|\(|\)|,|\.|\+|-|\*|/)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int
    value: Any = None


# -- syntax tree --------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class Field(Node):
    """``metrics.acc`` → Field("metrics", "acc"); ``status`` → Field("attr", "status")."""

    namespace: str
    key: str


@dataclass(frozen=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class InList(Node):
    operand: Node
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node
    negated: bool


@dataclass(frozen=True)
class Like(Node):
    operand: Node
    pattern: str
    negated: bool


@dataclass(frozen=True)
class And(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    item: Node


BOOLEAN = (Compare, InList, IsNull, Like, And, Or, Not)
VALUE = (Field, Literal, BinOp)

# Deeper filters are refused: SQL compilation and evaluation recurse once per level, and
# SQLite nests each condition of an and/or chain one level deeper (it stops at 1000).
MAX_DEPTH = 100
MAX_CONDITIONS = 500


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, BinOp | Compare):
        return (node.left, node.right)
    if isinstance(node, InList | IsNull | Like):
        return (node.operand,)
    if isinstance(node, And | Or):
        return node.items
    if isinstance(node, Not):
        return (node.item,)
    return ()


def tree_depth(node: Node) -> int:
    """Levels in a syntax tree, counted without recursion (a filter can be very deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in _children(item))
    return deepest


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise QueryError(f"Unexpected character {text[pos]!r}", text, pos)
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "number":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("number", raw, pos, value))
        elif kind == "string":
            quote = raw[0]
            tokens.append(Token("string", raw, pos, raw[1:-1].replace(quote * 2, quote)))
        elif kind == "quoted":
            tokens.append(Token("ident", raw, pos, raw[1:-1]))
        elif kind == "name":
            low = raw.lower()
            tokens.append(Token(low if low in _KEYWORDS else "ident", raw, pos, raw))
        elif kind == "op":
            tokens.append(Token(raw, raw, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, fields: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.fields = fields
        self.level = 0

    def _nest(self) -> None:
        """Enter one more level of parentheses, ``not`` or unary minus (bounded)."""
        self.level += 1
        if self.level > MAX_DEPTH:
            raise self.error(_too_deep())

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self, *kinds: str) -> Token | None:
        if self.tok.kind in kinds:
            tok = self.tok
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, what: str) -> Token:
        tok = self.take(kind)
        if tok is None:
            found = self.tok.text or "the end"
            raise QueryError(f"Expected {what} but found {found!r}", self.text, self.tok.pos)
        return tok

    def error(self, message: str, pos: int | None = None) -> QueryError:
        return QueryError(message, self.text, self.tok.pos if pos is None else pos)

    # boolean level
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("The filter is empty")
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.error(f"Unexpected {self.tok.text!r}; expected 'and', 'or' or the end")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.take("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(items[0].pos, tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.take("and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(items[0].pos, tuple(items))

    def not_expr(self) -> Node:
        tok = self.take("not")
        if tok is not None:
            self._nest()
            node = Not(tok.pos, self._boolean(self.not_expr()))
            self.level -= 1
            return node
        return self._boolean(self.predicate())

    def _boolean(self, node: Node) -> Node:
        if not isinstance(node, BOOLEAN):
            raise self.error("Expected a condition such as `metrics.accuracy > 0.8`", node.pos)
        return node

    def predicate(self) -> Node:
        left = self.sum()
        tok = self.tok
        if tok.kind in {"=", "==", "!=", "<>", "<", "<=", ">", ">="}:
            self.i += 1
            right = self.sum()
            op = {"==": "=", "<>": "!="}.get(tok.kind, tok.kind)
            return Compare(tok.pos, op, self._value(left), self._value(right))
        negated = False
        if tok.kind == "not" and self.tokens[self.i + 1].kind in {"in", "like"}:
            self.i += 1
            negated = True
        if self.take("in"):
            self.expect("(", "'(' after 'in'")
            values = [self.literal()]
            while self.take(","):
                values.append(self.literal())
            self.expect(")", "')' to close the list")
            return InList(tok.pos, self._value(left), tuple(values), negated)
        if self.take("like"):
            pattern = self.expect("string", "a quoted pattern after 'like'")
            return Like(tok.pos, self._value(left), pattern.value, negated)
        if self.take("is"):
            neg = bool(self.take("not"))
            self.expect("null", "'null' after 'is'")
            return IsNull(tok.pos, self._value(left), neg)
        return left

    def _value(self, node: Node) -> Node:
        if not isinstance(node, VALUE):
            raise self.error("Expected a field or a value, not a condition", node.pos)
        return node

    def literal(self) -> Literal:
        node = self.unary()
        if not isinstance(node, Literal):
            raise self.error("Expected a literal value", node.pos)
        return node

    # value level
    def sum(self) -> Node:
        node = self.term()
        while self.tok.kind in {"+", "-"}:
            tok = self.tok
            self.i += 1
            node = BinOp(tok.pos, tok.kind, self._value(node), self._value(self.term()))
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.kind in {"*", "/"}:
            tok = self.tok
            self.i += 1
            node = BinOp(tok.pos, tok.kind, self._value(node), self._value(self.unary()))
        return node

    def unary(self) -> Node:
        tok = self.tok
        if self.take("-"):
            self._nest()
            inner = self.unary()
            self.level -= 1
            if isinstance(inner, Literal) and isinstance(inner.value, int | float):
                return Literal(tok.pos, -inner.value)
            return BinOp(tok.pos, "-", Literal(tok.pos, 0), self._value(inner))
        return self.atom()

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind in {"number", "string"}:
            self.i += 1
            return Literal(tok.pos, tok.value)
        if tok.kind in {"true", "false"}:
            self.i += 1
            return Literal(tok.pos, tok.kind == "true")
        if tok.kind in {"null", "none"}:
            self.i += 1
            return Literal(tok.pos, None)
        if tok.kind == "(":
            self.i += 1
            self._nest()
            inner = self.or_expr()
            self.expect(")", "')'")
            self.level -= 1
            return inner
        if tok.kind == "ident":
            return self.field()
        found = tok.text or "the end of the filter"
        raise self.error(f"Expected a field or a value but found {found!r}")

    def field(self) -> Field:
        first = self.expect("ident", "a field name")
        parts = [first.value]
        while (
            self.tok.kind == "." and self.tokens[self.i + 1].kind in {"ident", "number"} | _KEYWORDS
        ):
            self.i += 1
            parts.append(self.tokens[self.i].text if self.tok.kind != "ident" else self.tok.value)
            self.i += 1
        head = parts[0]
        if self.fields == "runs":
            if head.lower() in NAMESPACES:
                if len(parts) < 2:
                    raise self.error(
                        f"'{head}' needs a name after it, like {head}.accuracy", first.pos
                    )
                return Field(first.pos, NAMESPACES[head.lower()], ".".join(parts[1:]))
            if len(parts) == 1 and head.lower() in ATTRIBUTES:
                return Field(first.pos, "attr", head.lower())
            raise self.error(
                f"Unknown field {'.'.join(parts)!r}; use metrics.NAME, params.NAME, tags.NAME "
                f"or one of {', '.join(ATTRIBUTES)}",
                first.pos,
            )
        return Field(first.pos, "name", ".".join(parts))


def parse(text: str, fields: str = "runs") -> Node:
    """Parse a filter; raises ``QueryError`` naming the position of the first problem.

    ``fields="runs"`` checks field names against runs; ``fields="names"`` accepts any dotted
    name (used by metric checks such as ``accuracy >= champion - 0.01``).
    """
    if not isinstance(text, str):
        raise QueryError(f"A filter must be a string, got {type(text).__name__}")
    node = _Parser(text, fields).parse()
    if tree_depth(node) > MAX_DEPTH:
        raise QueryError(_too_deep())
    conditions = _count(node, BOOLEAN) - _count(node, And | Or | Not)
    if conditions > MAX_CONDITIONS:
        raise QueryError(
            f"The filter has {conditions} conditions, more than the {MAX_CONDITIONS} allowed; "
            "compare against a list with `in (...)` instead (params.solver in ('lbfgs', 'saga'))"
        )
    return node


def _count(node: Node, kinds: Any) -> int:
    total, stack = 0, [node]
    while stack:
        item = stack.pop()
        total += isinstance(item, kinds)
        stack.extend(_children(item))
    return total


def _too_deep() -> str:
    return (
        f"The filter is nested more than {MAX_DEPTH} levels deep (operators, parentheses and "
        "'not' each add one); split it into simpler conditions joined with 'and'/'or'"
    )


def parse_order(spec: str | list[str] | tuple[str, ...]) -> list[tuple[Field, bool]]:
    """``"-metrics.acc"``, ``"metrics.acc desc"`` or a list of those → [(field, descending)]."""
    items = [spec] if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        for part in str(item).split(","):
            text = part.strip()
            if not text:
                continue
            desc = False
            if text.startswith("-"):
                desc, text = True, text[1:].strip()
            elif text.startswith("+"):
                text = text[1:].strip()
            low = text.lower()
            if low.endswith(" desc"):
                desc, text = True, text[:-5].strip()
            elif low.endswith(" asc"):
                text = text[:-4].strip()
            parser = _Parser(text, "runs")
            node = parser.field()
            if parser.tok.kind != "end":
                raise parser.error("Expected a field, optionally followed by asc or desc")
            out.append((node, desc))
    return out


def parse_time(value: Any, text: str, pos: int) -> float:
    """A literal compared with a time attribute: epoch seconds or an ISO date string."""
    if isinstance(value, int | float):
        return float(value)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise QueryError(
            f"{value!r} is not a date (use ISO format, 2026-01-31)", text, pos
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()
