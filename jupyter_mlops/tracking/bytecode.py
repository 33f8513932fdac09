"""What a ``with`` block does with names, read from its compiled code when its source text
is gone (``exec(open(path).read())``, ``python - < train.py``).

It gives the same ``CellAnalysis`` the source analysis gives for ordinary code: the names
the block reads before binding them, its assignments (with the calls each one makes, so
``accuracy_score(...)`` and ``.score(...)`` still mark metrics), its ``.fit`` calls and
their arguments, its loop variables. Only name-level facts are read from the bytecode
(loads, stores, attribute lookups, calls), which every CPython since 3.11 spells alike.
"""

from __future__ import annotations

import ast
import builtins
import dis
from types import CodeType

from .analysis import FIT_METHODS, Assignment, CellAnalysis, FitCall

__all__ = ["block_analysis"]

_BUILTINS = frozenset(dir(builtins))
_LOADS = frozenset(
    {
        "LOAD_NAME",
        "LOAD_GLOBAL",
        "LOAD_FAST",
        "LOAD_FAST_CHECK",
        "LOAD_FAST_BORROW",
        "LOAD_DEREF",
        "LOAD_CLASSDEREF",
        "LOAD_FROM_DICT_OR_GLOBALS",
        "LOAD_FROM_DICT_OR_DEREF",
        "LOAD_FAST_LOAD_FAST",
        "LOAD_FAST_BORROW_LOAD_FAST_BORROW",
    }
)
_STORES = frozenset(
    {"STORE_NAME", "STORE_GLOBAL", "STORE_FAST", "STORE_DEREF", "STORE_FAST_STORE_FAST"}
)
_ATTRS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_CALLS = frozenset({"PRECALL", "CALL", "CALL_KW", "CALL_FUNCTION_EX"})
_LEAVES = frozenset({"PUSH_EXC_INFO", "WITH_EXCEPT_START", "RETURN_VALUE", "RETURN_CONST"})
_RESULT = "<result>"  # the receiver of a method called on an unnamed value


def _names(ins: dis.Instruction) -> list[str]:
    value = ins.argval
    if isinstance(value, tuple):
        return [str(v) for v in value]
    return [str(value)] if isinstance(value, str) else []


def _line(ins: dis.Instruction) -> int | None:
    positions = getattr(ins, "positions", None)
    return positions.lineno if positions is not None else None


def _body(code: CodeType, lasti: int) -> list[dis.Instruction] | None:
    """The instructions of the ``with`` body whose ``__enter__`` runs at ``lasti``: after
    the ``as`` target is stored, up to the exit call, which is placed on the ``with`` line."""
    instrs = list(dis.get_instructions(code))
    index = next((i for i, ins in enumerate(instrs) if ins.offset == lasti), None)
    if index is None:
        return None
    with_line = _line(instrs[index])
    i = index + 1
    while i < len(instrs) and instrs[i].opname not in _STORES | {"POP_TOP"}:
        i += 1  # UNPACK_SEQUENCE of `as (a, b)`
    i += 1
    while i < len(instrs) and _line(instrs[i]) in (with_line, None):
        if instrs[i].opname in _LEAVES:
            return None  # the block is on the `with` line itself: no line tells it apart
        i += 1  # more of the `with` statement: further context managers, targets
    body = []
    for ins in instrs[i:]:
        line = _line(ins)
        if line is not None and line == with_line:
            return body or None
        body.append(ins)
    return None  # no exit back on the `with` line: not a block this reader understands


class _Reader:
    def __init__(self, result: CellAnalysis):
        self.r = result
        self.stored: set[str] = set()
        self.segment: list[dis.Instruction] = []
        self.after_store = False
        self.loop_stores = 0
        self.in_loop = False
        self.pending_fit: tuple[list[ast.expr], bool] | None = None  # args of `X(...).fit`

    # -- names ----------------------------------------------------------------------------
    def load(self, name: str) -> None:
        self.r.loads.add(name)
        if name not in self.stored and name not in _BUILTINS and not name.startswith("."):
            self.r.free_names.add(name)

    def nested_loads(self, code: CodeType) -> None:
        """Names a lambda, def or comprehension in the block reads from outside it."""
        own = set(code.co_varnames) | set(code.co_cellvars)
        for ins in dis.get_instructions(code):
            if ins.opname in _LOADS:
                for name in _names(ins):
                    if name not in own:
                        self.load(name)
            elif ins.opname == "LOAD_CONST" and isinstance(ins.argval, CodeType):
                self.nested_loads(ins.argval)

    # -- statements -------------------------------------------------------------------------
    def read(self, body: list[dis.Instruction]) -> None:
        previous = ""
        # a backward jump closes a loop (for or while): what lies between its target and
        # the jump is the loop's body, whose stores are the loop's state
        loops = [
            (ins.argval, ins.offset)
            for ins in body
            if "BACKWARD" in ins.opname and isinstance(ins.argval, int)
        ]
        for ins in body:
            op = ins.opname
            self.in_loop = any(start <= ins.offset <= end for start, end in loops)
            if self.after_store and op not in _STORES:
                self.segment = []
                self.after_store = False
            if op in _STORES:
                loop = previous == "FOR_ITER" or self.loop_stores > 0
                if self.loop_stores > 0:
                    self.loop_stores -= 1
                for name in _names(ins):
                    self.store(name, loop)
                self.after_store = True
            elif op == "STORE_FAST_LOAD_FAST":
                names = _names(ins)
                if names:
                    self.store(names[0], previous == "FOR_ITER")
                    self.load(names[-1])
                self.segment.append(ins)
            elif op == "UNPACK_SEQUENCE" and previous == "FOR_ITER":
                self.loop_stores = int(ins.argval or 0)
                self.segment.append(ins)
            elif op == "POP_TOP":
                self.statement_end()
            else:
                if op in _LOADS and op != "LOAD_FAST_AND_CLEAR":
                    for name in _names(ins):
                        self.load(name)
                elif op == "LOAD_CONST" and isinstance(ins.argval, CodeType):
                    self.nested_loads(ins.argval)
                self.segment.append(ins)
            previous = op

    def store(self, name: str, loop: bool) -> None:
        self.stored.add(name)
        self.r.binds.add(name)
        if loop or self.in_loop:
            self.r.loop_binds.add(name)
        if loop:
            self.r.loop_targets.add(name)
            return
        calls, fits = self.calls(self.segment)
        for owner, x, y in fits:
            self.r.fit_calls.append(FitCall(owner or name, x, y))
        ops = {i.opname for i in self.segment}
        if ops & {"IMPORT_NAME", "IMPORT_FROM", "UNPACK_SEQUENCE", "UNPACK_EX"}:
            return  # an import or `a, b = f()`: the source analysis records no value either
        if any(i.opname == "BINARY_OP" and str(i.argrepr).endswith("=") for i in self.segment):
            return  # `total += x`: an augmented assignment, not a value
        line = next((_line(i) for i in self.segment if _line(i) is not None), None)
        self.r.assignments.append(
            Assignment(
                name,
                ast.Tuple(elts=calls, ctx=ast.Load()),
                f"line {line} of code run without its source" if line else "code without source",
            )
        )

    def statement_end(self) -> None:
        """An expression statement (`clf.fit(X, y)`, `df.dropna(inplace=True)`)."""
        calls, fits = self.calls(self.segment)
        for owner, x, y in fits:
            if owner is not None:
                self.r.fit_calls.append(FitCall(owner, x, y))
        for call in calls:
            func = call.func
            if isinstance(func, ast.Attribute):
                root = func.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id != _RESULT:
                    self.r.mutates.add(root.id)
        self.segment = []

    # -- expressions --------------------------------------------------------------------------
    @staticmethod
    def calls(
        segment: list[dis.Instruction],
    ) -> tuple[list[ast.expr], list[tuple[str | None, ast.expr | None, ast.expr | None]]]:
        """The callees of a statement (as ``Call`` nodes ``_call_kinds`` understands) and
        its fit calls: (owner or None for an unnamed receiver, x, y)."""
        chains: list[ast.expr] = []
        fits: list[tuple[str | None, ast.expr | None, ast.expr | None]] = []
        current: ast.expr | None = None
        i = 0
        while i < len(segment):
            ins = segment[i]
            op = ins.opname
            if op in _LOADS and op != "LOAD_FAST_AND_CLEAR":
                names = _names(ins)
                current = ast.Name(id=names[-1], ctx=ast.Load()) if names else None
                if current is not None:
                    chains.append(current)
            elif op in _ATTRS and isinstance(ins.argval, str):
                receiver = current if current is not None else ast.Name(_RESULT, ast.Load())
                if chains and chains[-1] is current:
                    chains.pop()
                current = ast.Attribute(value=receiver, attr=ins.argval, ctx=ast.Load())
                chains.append(current)
                if ins.argval in FIT_METHODS:
                    args = _call_args(segment[i + 1 :])
                    owner = receiver.id if isinstance(receiver, ast.Name) else None
                    if owner == _RESULT:
                        owner = None
                    x = args[0] if len(args) > 0 else None
                    y = args[1] if len(args) > 1 else None
                    fits.append((owner, x, y))
            else:
                current = None
            i += 1
        return [ast.Call(func=c, args=[], keywords=[]) for c in chains], fits


def _call_args(rest: list[dis.Instruction]) -> list[ast.expr]:
    """The positional arguments of the call that follows, when each is a name or a dotted
    name (``fit(X, y)``, ``fit(data.X, data.y)``); else none."""
    args: list[ast.expr] = []
    for ins in rest:
        op = ins.opname
        if op in _LOADS and op != "LOAD_FAST_AND_CLEAR":
            args.extend(ast.Name(id=n, ctx=ast.Load()) for n in _names(ins))
        elif op in _ATTRS and args and isinstance(ins.argval, str):
            args[-1] = ast.Attribute(value=args[-1], attr=ins.argval, ctx=ast.Load())
        elif op in _CALLS:
            return args
        elif op in ("PUSH_NULL", "CACHE", "NOP"):
            continue
        else:
            return []
    return []


def block_analysis(code: CodeType, lasti: int) -> CellAnalysis | None:
    """The analysis of the ``with`` block entered at instruction offset ``lasti`` of
    ``code``, or None when its instructions cannot be told apart."""
    try:
        body = _body(code, lasti)
        if body is None:
            return None
        result = CellAnalysis(source="")
        reader = _Reader(result)
        reader.read(body)
    except Exception:
        return None
    return result
