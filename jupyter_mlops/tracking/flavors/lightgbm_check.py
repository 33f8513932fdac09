"""The checks a LightGBM model text passes before LightGBM loads it.

LightGBM's parser trusts its input: a crafted model text (a word where a number goes, a
child index past the end of a tree, tree sizes that do not match) crashes the process
that loads it. So the text is read here first, as LightGBM reads it (a header of
``key=value`` lines, then ``Tree=`` blocks that end at an empty line, then
``end of trees``), and every tree is checked to be a tree: numbers where numbers go,
arrays of the declared length, each node and leaf reached exactly once, features and
categories within range. The ``tree_sizes`` header line (which makes LightGBM parse trees
in parallel threads, where a parse error aborts the process) is dropped: the trees are
then read one after the other, and any error LightGBM still finds is an exception.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["ModelTextError", "check_model_text"]

_MAX = (1 << 31) - 1


class ModelTextError(ValueError):
    """The text is not well-formed LightGBM model text."""


def _pairs(lines: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep:
            raise ModelTextError(f"{what} has the line {line[:40]!r}, not key=value")
        if key in out:
            raise ModelTextError(f"{what} gives {key!r} twice")
        out[key] = value
    return out


def _int(values: dict[str, str], key: str, what: str, low: int = 0, high: int = _MAX) -> int:
    text = values.get(key)
    try:
        number = int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ModelTextError(f"{what}'s {key} is {text!r}, not a whole number") from None
    if not low <= number <= high:
        raise ModelTextError(f"{what}'s {key} is {number}, outside [{low}, {high}]")
    return number


def _array(values: dict[str, str], key: str, what: str, n: int, kind: type, empty: bool = False):
    tokens = values.get(key, "").split()
    if empty and not tokens:
        return np.zeros(0, dtype=np.int64 if kind is int else np.float64)
    if len(tokens) != n:
        raise ModelTextError(f"{what}'s {key} has {len(tokens)} values, not {n}")
    try:
        return np.array(tokens, dtype=np.int64 if kind is int else np.float64)
    except (ValueError, OverflowError):
        raise ModelTextError(f"{what}'s {key} holds something that is not a number") from None


def _tree(values: dict[str, str], what: str, n_features: int) -> None:
    n = _int(values, "num_leaves", what, 1)
    n_cat = _int(values, "num_cat", what, 0)
    _array(values, "leaf_value", what, n, float)
    for key in ("leaf_weight", "leaf_count"):
        _array(values, key, what, n, float, empty=True)
    linear = _int(values, "is_linear", what, 0, 1) if "is_linear" in values else 0
    if "shrinkage" in values:
        _array(values, "shrinkage", what, 1, float)
    if n > 1:
        inner = n - 1
        split = _array(values, "split_feature", what, inner, int)
        _array(values, "split_gain", what, inner, float)
        threshold = _array(values, "threshold", what, inner, float)
        decision = _array(values, "decision_type", what, inner, int)
        left = _array(values, "left_child", what, inner, int)
        right = _array(values, "right_child", what, inner, int)
        for key in ("internal_value", "internal_weight", "internal_count"):
            _array(values, key, what, inner, float, empty=True)
        if split.min() < 0 or split.max() >= n_features:
            raise ModelTextError(f"{what} splits on a feature outside its {n_features}")
        if decision.min() < 0 or decision.max() > 127:
            raise ModelTextError(f"{what} has an unknown decision type")
        children = np.concatenate([left, right])
        if children.min() < -n or children.max() >= inner:
            raise ModelTextError(f"{what} has a child outside its {n} leaves and {inner} nodes")
        nodes = children[children >= 0]
        leaves = -children[children < 0] - 1
        if (
            np.any(nodes == 0)
            or np.bincount(nodes, minlength=inner)[1:].tolist() != [1] * (inner - 1)
            or np.bincount(leaves, minlength=n).tolist() != [1] * n
        ):
            raise ModelTextError(f"{what} does not reach each node and leaf exactly once")
        categorical = (decision & 1).astype(bool)
        if categorical.any():
            index = threshold[categorical]
            if np.any(index != np.floor(index)) or index.min() < 0 or index.max() >= n_cat:
                raise ModelTextError(f"{what} has a categorical split outside its {n_cat} sets")
    if n_cat:
        bounds = _array(values, "cat_boundaries", what, n_cat + 1, int)
        if bounds[0] != 0 or np.any(np.diff(bounds) < 0):
            raise ModelTextError(f"{what}'s cat_boundaries are not increasing from 0")
        words = _array(values, "cat_threshold", what, int(bounds[-1]), int)
        if words.size and (words.min() < 0 or words.max() > 0xFFFFFFFF):
            raise ModelTextError(f"{what}'s cat_threshold holds values outside 32 bits")
    if linear:
        _array(values, "leaf_const", what, n, float)
        counts = _array(values, "num_features", what, n, int)
        if counts.min() < 0 or counts.max() > n_features:
            raise ModelTextError(f"{what}'s num_features are outside [0, {n_features}]")
        features = _array(values, "leaf_features", what, int(counts.sum()), int)
        _array(values, "leaf_coeff", what, int(counts.sum()), float)
        if features.size and (features.min() < 0 or features.max() >= n_features):
            raise ModelTextError(f"{what}'s leaf_features are outside its {n_features}")


_PARAM = re.compile(r"\[[A-Za-z0-9_]+: [^\n]*\]")
_IMPORTANCE = re.compile(r"[^\s=]+=\d+")


def _tail(lines: list[str]) -> None:
    """After the trees: feature importances, the parameters as ``[key: value]`` lines
    between ``parameters:`` and ``end of parameters``, and the pandas categories, last."""
    section = None
    for j, line in enumerate(lines):
        if not line:
            continue
        if line in ("feature_importances:", "parameters:") and section in (None, "importances"):
            section = "importances" if line == "feature_importances:" else "parameters"
        elif line == "end of parameters" and section == "parameters":
            section = "done"
        elif (section == "parameters" and _PARAM.fullmatch(line)) or (
            section == "importances" and _IMPORTANCE.fullmatch(line)
        ):
            continue
        elif line.startswith("pandas_categorical:") and section != "parameters":
            if any(rest for rest in lines[j + 1 :]):
                raise ModelTextError("lines follow pandas_categorical, which must come last")
            return
        else:
            raise ModelTextError(f"after the trees, the line {line[:40]!r} is not expected")
    if section == "parameters":
        raise ModelTextError("the parameters do not end with 'end of parameters'")


def check_model_text(text: str) -> str:
    """The model text to hand to LightGBM (``tree_sizes`` dropped), or ``ModelTextError``
    when ``text`` is not well-formed LightGBM model text."""
    if "\r" in text or "\0" in text:
        raise ModelTextError("it holds carriage returns or NUL characters")
    lines = text.split("\n")
    if not lines or lines[0] != "tree":
        raise ModelTextError("it does not start with 'tree'")
    i = 1
    header: list[str] = []
    while i < len(lines) and not lines[i].startswith("Tree="):
        if lines[i].startswith("end of trees"):
            break
        if lines[i]:
            header.append(lines[i])
        i += 1
    header_end = i
    values = _pairs(header, "the header")
    for key in ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx"):
        if key not in values:
            raise ModelTextError(f"the header has no {key}")
    n_class = _int(values, "num_class", "the header", 1, 1 << 20)
    if _int(values, "num_tree_per_iteration", "the header", 1, 1 << 20) != n_class:
        raise ModelTextError("num_tree_per_iteration differs from num_class")
    n_features = _int(values, "max_feature_idx", "the header", 0, _MAX - 1) + 1
    _int(values, "label_index", "the header", 0, _MAX)
    objective = values.get("objective", "").split(" ")
    for part in objective[1:]:  # "binary sigmoid:1": a name, then numeric settings
        name, sep, number = part.partition(":")
        try:
            float(number)
        except ValueError:
            raise ModelTextError(
                f"the objective setting {part[:40]!r} is not name:number"
            ) from None
        if not sep or not name:
            raise ModelTextError(f"the objective setting {part[:40]!r} is not name:number")
        if name == "num_class" and float(number) != n_class:
            raise ModelTextError("the objective's num_class differs from the header's")
    for key in ("feature_names", "feature_infos"):
        if key in values and len(values[key].split(" ")) != n_features:
            raise ModelTextError(f"the header's {key} do not name {n_features} features")
    count = 0
    while i < len(lines) and lines[i].startswith("Tree="):
        block: list[str] = []
        i += 1
        while i < len(lines) and lines[i]:
            block.append(lines[i])
            i += 1
        _tree(_pairs(block, f"tree {count}"), f"tree {count}", n_features)
        count += 1
        while i < len(lines) and not lines[i]:
            i += 1
    if i >= len(lines) or lines[i] != "end of trees":
        raise ModelTextError("the trees do not end with 'end of trees'")
    if count == 0:
        raise ModelTextError("it holds no trees")
    _tail(lines[i + 1 :])
    head = [line for line in lines[:header_end] if not line.startswith("tree_sizes=")]
    return "\n".join(head + lines[header_end:])
