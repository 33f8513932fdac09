"""Static analysis of a cell's code: which names it reads, binds and mutates, its
assignments, and its ``.fit`` calls. Pure ``ast``; no execution and no IPython."""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["Assignment", "CellAnalysis", "FitCall", "analyze", "magic_body"]

_BUILTINS = frozenset(dir(builtins))
FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit", "fit_resample"})
_PY_CELL_MAGICS = frozenset({"track", "time", "timeit", "capture", "prun"})


@dataclass(frozen=True)
class Assignment:
    """``target = value`` somewhere in the cell (outside function bodies)."""

    target: str
    value: ast.expr
    source: str


@dataclass(frozen=True)
class FitCall:
    """``<owner>.fit(X, y)``: ``owner`` is the receiver's or the assigned variable's name."""

    owner: str
    x: ast.expr | None
    y: ast.expr | None
    call: ast.Call | None = None  # the call itself (its other arguments: ``epochs=3``)


@dataclass
class CellAnalysis:
    """What a cell does with names."""

    source: str
    ok: bool = True
    loads: set[str] = field(default_factory=set)
    binds: set[str] = field(default_factory=set)
    mutates: set[str] = field(default_factory=set)
    loop_targets: set[str] = field(default_factory=set)
    # names bound inside a for/while loop's body (its state: `w = w - lr * grad`, `loss = ...`)
    loop_binds: set[str] = field(default_factory=set)
    imports_star: bool = False
    assignments: list[Assignment] = field(default_factory=list)
    fit_calls: list[FitCall] = field(default_factory=list)
    free_names: set[str] = field(default_factory=set)
    comprehension_targets: set[str] = field(default_factory=set)

    @property
    def free(self) -> set[str]:
        """Names the cell reads before binding them: what it takes from earlier cells."""
        return self.free_names


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


class _Visitor(ast.NodeVisitor):
    def __init__(self, result: CellAnalysis, text: str):
        self.r = result
        self.text = text
        self.depth = 0  # inside def/lambda/class bodies: names there are not the cell's
        self.loops = 0  # inside for/while bodies

    def _seg(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.r.loads.add(node.id)
        elif self.depth == 0:
            self.r.binds.add(node.id)
            if self.loops:
                self.r.loop_binds.add(node.id)

    def _scoped(self, node: ast.AST, name: str | None) -> None:
        if name is not None and self.depth == 0:
            self.r.binds.add(name)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for dec in node.decorator_list:
                self.visit(dec)
        self.depth += 1
        body = node.body if isinstance(node.body, list) else [node.body]
        args = getattr(node, "args", None)
        if args is not None:
            for default in [*args.defaults, *args.kw_defaults]:
                if default is not None:
                    self.visit(default)
        for stmt in body:
            self.visit(stmt)
        self.depth -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            self.visit(base)
        self._scoped(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scoped(node, None)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.r.comprehension_targets.update(_target_names(node.target))
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        if self.depth == 0:
            for alias in node.names:
                self.r.binds.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if self.depth == 0:
            for alias in node.names:
                if alias.name == "*":
                    self.r.imports_star = True
                else:
                    self.r.binds.add(alias.asname or alias.name)

    def visit_For(self, node: ast.For) -> None:
        if self.depth == 0:
            self.r.loop_targets.update(_target_names(node.target))
            self.r.loop_binds.update(_target_names(node.target))
        self.visit(node.iter)
        self.visit(node.target)
        self._loop_body(node.body + node.orelse)

    visit_AsyncFor = visit_For  # type: ignore[assignment]

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        self._loop_body(node.body + node.orelse)

    def _loop_body(self, body: list[ast.stmt]) -> None:
        self.loops += 1
        for stmt in body:
            self.visit(stmt)
        self.loops -= 1

    def visit_Assign(self, node: ast.Assign) -> None:
        if self.depth == 0:
            for target in node.targets:
                self._record_assignment(target, node.value)
                self._record_mutation(target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if self.depth == 0 and node.value is not None:
            self._record_assignment(node.target, node.value)
            self._record_mutation(node.target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self.depth == 0:
            if isinstance(node.target, ast.Name):
                self.r.loads.add(node.target.id)
                self.r.binds.add(node.target.id)
                if self.loops:
                    self.r.loop_binds.add(node.target.id)
            self._record_mutation(node.target)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        if self.depth == 0:
            self._record_assignment(node.target, node.value)
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        # `df.dropna(inplace=True)`, `model.fit(X, y)`: a method call may change the object.
        if self.depth == 0 and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute):
                root = _root_name(func.value)
                if root is not None:
                    self.r.mutates.add(root)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if self.depth == 0 and isinstance(node.func, ast.Attribute):
            if node.func.attr in FIT_METHODS and isinstance(node.func.value, ast.Name):
                self._add_fit(node.func.value.id, node)
            code = _magic_code(node)
            if code is not None:  # `%time x = f(df)`: the magic's argument is Python
                try:
                    inner = ast.parse(code)
                except (SyntaxError, ValueError):
                    inner = None
                if inner is not None:
                    saved, self.text = self.text, code
                    for stmt in inner.body:
                        self.visit(stmt)
                    self.text = saved
        self.generic_visit(node)

    def _add_fit(self, owner: str, call: ast.Call) -> None:
        x = call.args[0] if call.args else (_kw(call, "X") or _kw(call, "x"))
        y = call.args[1] if len(call.args) > 1 else _kw(call, "y")
        self.r.fit_calls.append(FitCall(owner, x, y, call))

    def _record_mutation(self, target: ast.AST) -> None:
        if isinstance(target, ast.Subscript | ast.Attribute):
            root = _root_name(target)
            if root is not None:
                self.r.mutates.add(root)
                self.r.loads.add(root)

    def _record_assignment(self, target: ast.AST, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.r.assignments.append(Assignment(target.id, value, self._seg(value)))
            fit = _fit_in_chain(value)
            if fit is not None:
                self._add_fit(target.id, fit)
        elif isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List):
            if len(target.elts) == len(value.elts):
                for t, v in zip(target.elts, value.elts, strict=True):
                    self._record_assignment(t, v)


def _magic_code(call: ast.Call) -> str | None:
    """The Python a ``get_ipython().run_line_magic('time', code)`` call (or a cell magic
    that runs its body) executes, when the magic is one that runs code."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in {"run_line_magic", "run_cell_magic"}):
        return None
    args = call.args
    if not args or not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
        return None
    if args[0].value not in _PY_CELL_MAGICS:  # type: ignore[attr-defined]
        return None
    return args[-1].value  # type: ignore[attr-defined]


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _fit_in_chain(value: ast.expr) -> ast.Call | None:
    """``Estimator(...).fit(X, y)`` assigned to a name: the ``fit`` call."""
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in FIT_METHODS
        and not isinstance(value.func.value, ast.Name)
    ):
        return value
    return None


def magic_body(source: str) -> str | None:
    """The body of ``get_ipython().run_cell_magic('track', '...', body)``, IPython's rewrite
    of a ``%%track`` cell (or another cell magic whose body is Python); else None."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    return _magic_body(tree)


def _magic_body(tree: ast.Module) -> str | None:
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "run_cell_magic"
        and len(call.args) == 3
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)
    ):
        return None
    name, _line, body = (a.value for a in call.args)  # type: ignore[attr-defined]
    return body if name in _PY_CELL_MAGICS else None


@lru_cache(maxsize=512)
def analyze(source: str) -> CellAnalysis:
    """Analyze Python source (IPython syntax already transformed). Never raises."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return CellAnalysis(source=source, ok=False)
    body = _magic_body(tree)
    if body is not None:
        return analyze(body)
    result = CellAnalysis(source=source)
    for stmt in tree.body:
        part = CellAnalysis(source=source)
        _Visitor(part, source).visit(stmt)
        result.loads |= part.loads
        result.binds |= part.binds
        result.mutates |= part.mutates
        result.loop_targets |= part.loop_targets
        result.loop_binds |= part.loop_binds
        result.imports_star |= part.imports_star
        result.assignments += part.assignments
        result.fit_calls += part.fit_calls
    result.free_names = _free_names(tree.body, set(), source)
    return result


def _free_names(body: list[ast.stmt], bound: set[str], source: str) -> set[str]:
    """The names ``body`` reads before one of its statements bound them: what it takes from
    outside. Statement by statement, into the bodies of loops, ``if``, ``with`` and ``try``,
    so ``loss = f(i); log(loss)`` inside a loop reads its own ``loss``. Adds to ``bound``."""
    free: set[str] = set()

    def leaf(node: ast.AST) -> None:
        part = CellAnalysis(source=source)
        _Visitor(part, source).visit(node)
        skip = bound | part.comprehension_targets | part.loop_targets
        free.update(n for n in part.loads if n not in skip and n not in _BUILTINS)
        bound.update(part.binds)

    for stmt in body:
        if isinstance(stmt, ast.For | ast.AsyncFor):
            leaf(stmt.iter)
            bound.update(_target_names(stmt.target))
            free.update(_free_names(stmt.body + stmt.orelse, bound, source))
        elif isinstance(stmt, ast.While):
            leaf(stmt.test)
            free.update(_free_names(stmt.body + stmt.orelse, bound, source))
        elif isinstance(stmt, ast.If):
            leaf(stmt.test)
            # either branch may run: each starts from what was bound before the `if`
            before = set(bound)
            branches = [set(before), set(before)]
            free.update(_free_names(stmt.body, branches[0], source))
            free.update(_free_names(stmt.orelse, branches[1], source))
            bound.update(branches[0] | branches[1])
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                leaf(item.context_expr)
                if item.optional_vars is not None:
                    leaf(item.optional_vars)
            free.update(_free_names(stmt.body, bound, source))
        else:
            leaf(stmt)
    return free
