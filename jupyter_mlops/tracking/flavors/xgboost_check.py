"""The checks an XGBoost UBJSON model passes before XGBoost loads it.

XGBoost's own loader trusts its input: a crafted file (a child index past the end of a
tree, a length that claims gigabytes) crashes or hangs the process that loads it, the
kernel or a server. So the file is read here first with a bounded parser, and every
tree is checked to be a tree: arrays of the declared length, children and parents that
point at each other inside the tree, features and categories within range, as many
trees as the model says. Only then does XGBoost see the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .ubjson import UBJSONError, loads

__all__ = ["ModelCheckError", "check_model"]

_ROOT_PARENT = (2147483647, -1)  # scalar trees mark the root with INT_MAX, vector-leaf with -1
_MAX_CATEGORY = 1 << 24  # a split's categories become a bitset this long at most
_NODE_ARRAYS = (
    "left_children",
    "right_children",
    "parents",
    "split_indices",
    "split_conditions",
    "split_type",
    "default_left",
    "loss_changes",
    "sum_hessian",
)


class ModelCheckError(ValueError):
    """The model file is not a well-formed XGBoost model."""


def _int(value: Any, what: str, low: int = 0, high: int = 1 << 40) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ModelCheckError(f"{what} is {value!r}, not a whole number") from None
    if not low <= number <= high:
        raise ModelCheckError(f"{what} is {number}, outside [{low}, {high}]")
    return number


def _dict(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelCheckError(f"{what} is missing or not an object")
    return value


def _ints(value: Any, what: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(value) if isinstance(value, list | np.ndarray) else None
    if arr is None or arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iub"):
        raise ModelCheckError(f"{what} is not an array of integers")
    if n is not None and arr.size != n:
        raise ModelCheckError(f"{what} has {arr.size} entries, not {n}")
    return arr.astype(np.int64, copy=False)


def _numbers(value: Any, what: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(value) if isinstance(value, list | np.ndarray) else None
    if arr is None or arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iufb"):
        raise ModelCheckError(f"{what} is not an array of numbers")
    if n is not None and arr.size != n:
        raise ModelCheckError(f"{what} has {arr.size} entries, not {n}")
    return arr


def _segments(offsets: np.ndarray, total: int, what: str) -> None:
    if offsets.size and (offsets[0] < 0 or np.any(np.diff(offsets) < 0) or offsets[-1] > total):
        raise ModelCheckError(f"{what} are not increasing offsets within {total} values")


def _tree(tree: Mapping[str, Any], i: int, n_features: int) -> None:
    what = f"tree {i}"
    param = _dict(tree.get("tree_param"), f"{what}'s tree_param")
    n = _int(param.get("num_nodes"), f"{what}'s num_nodes", 1, 1 << 31)
    if _int(param.get("num_feature"), f"{what}'s num_feature") != n_features:
        raise ModelCheckError(
            f"{what} is for {param.get('num_feature')} features, not {n_features}"
        )
    k = _int(param.get("size_leaf_vector", 1), f"{what}'s size_leaf_vector", 0, 1 << 20) or 1
    for key in _NODE_ARRAYS:
        if key in ("split_conditions", "loss_changes", "sum_hessian"):
            _numbers(tree.get(key), f"{what}'s {key}", n)
        else:
            _ints(tree.get(key), f"{what}'s {key}", n)
    _numbers(tree.get("base_weights"), f"{what}'s base_weights", n * k)
    left = _ints(tree["left_children"], "left_children")
    right = _ints(tree["right_children"], "right_children")
    parents = _ints(tree["parents"], "parents")
    leaf = left == -1
    inner = ~leaf
    if k > 1:  # a vector-leaf tree: a leaf's right child is its row in leaf_weights
        weights = _numbers(tree.get("leaf_weights"), f"{what}'s leaf_weights")
        if weights.size % k:
            raise ModelCheckError(f"{what}'s leaf_weights do not hold whole leaves")
        rows = right[leaf]
        if rows.size and (rows.min() < 0 or rows.max() >= weights.size // k):
            raise ModelCheckError(f"{what} has a leaf outside its leaf_weights")
    elif np.any(right[leaf] != -1):
        raise ModelCheckError(f"{what} has a node with only one child")
    children = np.concatenate([left[inner], right[inner]])
    if children.size and (children.min() < 1 or children.max() >= n):
        raise ModelCheckError(f"{what} has a child index outside its {n} nodes")
    if np.bincount(children, minlength=n).max(initial=0) > 1:
        raise ModelCheckError(f"{what} has a node with two parents")
    nodes = np.flatnonzero(inner)
    if np.any(parents[left[nodes]] != nodes) or np.any(parents[right[nodes]] != nodes):
        raise ModelCheckError(f"{what}'s parents do not match its children")
    if int(parents[0]) not in _ROOT_PARENT:
        raise ModelCheckError(f"{what}'s root has a parent")
    split = _ints(tree["split_indices"], "split_indices")[inner]
    if split.size and (split.min() < 0 or split.max() >= n_features):
        raise ModelCheckError(f"{what} splits on a feature outside its {n_features}")
    types = _ints(tree["split_type"], "split_type")
    if types.size and (types.min() < 0 or types.max() > 1):
        raise ModelCheckError(f"{what} has an unknown split type")
    categories = _ints(tree.get("categories", []), f"{what}'s categories")
    cat_nodes = _ints(tree.get("categories_nodes", []), f"{what}'s categories_nodes")
    seg = _ints(
        tree.get("categories_segments", []), f"{what}'s categories_segments", cat_nodes.size
    )
    size = _ints(tree.get("categories_sizes", []), f"{what}'s categories_sizes", cat_nodes.size)
    if not np.array_equal(cat_nodes, np.flatnonzero((types == 1) & inner)):
        raise ModelCheckError(f"{what}'s categorical splits and their categories disagree")
    if seg.size and (seg.min() < 0 or size.min() < 0 or (seg + size).max() > categories.size):
        raise ModelCheckError(f"{what}'s category segments run past its categories")
    if categories.size and (categories.min() < 0 or categories.max() >= _MAX_CATEGORY):
        raise ModelCheckError(f"{what} has a category code outside [0, {_MAX_CATEGORY})")


def _cats(cats: Any, n_features: int) -> None:
    """XGBoost 3's record of the categories each feature was trained with."""
    if cats is None:
        return
    cats = _dict(cats, "cats")
    enc = cats.get("enc", [])
    if not isinstance(enc, list) or len(enc) not in (0, n_features):
        raise ModelCheckError(f"cats.enc has {len(enc) if isinstance(enc, list) else '?'} features")
    for j, column in enumerate(enc):
        column = _dict(column, f"cats.enc[{j}]")
        values = column.get("values", [])
        if not isinstance(values, list | np.ndarray):
            raise ModelCheckError(f"cats.enc[{j}].values is not an array")
        if "offsets" in column:
            _segments(
                _ints(column["offsets"], f"cats.enc[{j}].offsets"), len(values), "cats offsets"
            )
    segments = _ints(cats.get("feature_segments", []), "cats.feature_segments")
    order = _ints(cats.get("sorted_idx", []), "cats.sorted_idx")
    _segments(segments, order.size, "cats.feature_segments")
    if order.size and (order.min() < 0 or order.max() >= order.size):
        raise ModelCheckError("cats.sorted_idx points outside itself")


def _gbtree(model: Mapping[str, Any], n_features: int, n_groups: int) -> int:
    trees = model.get("trees")
    if not isinstance(trees, list):
        raise ModelCheckError("the model has no list of trees")
    param = _dict(model.get("gbtree_model_param"), "gbtree_model_param")
    if _int(param.get("num_trees"), "num_trees") != len(trees):
        raise ModelCheckError(f"num_trees is {param.get('num_trees')}, but it holds {len(trees)}")
    _int(param.get("num_parallel_tree", 1), "num_parallel_tree", 1, 1 << 20)
    info = _ints(model.get("tree_info"), "tree_info", len(trees))
    if info.size and (info.min() < 0 or info.max() >= n_groups):
        raise ModelCheckError(f"tree_info names an output outside {n_groups}")
    if "iteration_indptr" in model:
        indptr = _ints(model["iteration_indptr"], "iteration_indptr")
        if indptr.size == 0 or indptr[0] != 0 or indptr[-1] != len(trees):
            raise ModelCheckError("iteration_indptr does not span the trees")
        _segments(indptr, len(trees), "iteration_indptr")
    for i, tree in enumerate(trees):
        _tree(_dict(tree, f"tree {i}"), i, n_features)
    _cats(model.get("cats"), n_features)
    return len(trees)


def check_model(data: bytes) -> None:
    """Raise ``ModelCheckError`` unless ``data`` is a well-formed XGBoost UBJSON model."""
    try:
        doc = loads(data)
    except UBJSONError as exc:
        raise ModelCheckError(f"not UBJSON: {exc}") from exc
    learner = _dict(_dict(doc, "the model").get("learner"), "learner")
    param = _dict(learner.get("learner_model_param"), "learner_model_param")
    n_features = _int(param.get("num_feature"), "num_feature", 0, 1 << 31)
    n_class = _int(param.get("num_class", 0), "num_class", 0, 1 << 20)
    n_target = _int(param.get("num_target", 1), "num_target", 0, 1 << 20)
    n_groups = max(n_class, n_target, 1)
    for key in ("feature_names", "feature_types"):
        names = learner.get(key, [])
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise ModelCheckError(f"{key} is not a list of strings")
        if names and len(names) != n_features:
            raise ModelCheckError(f"{key} has {len(names)} entries for {n_features} features")
    booster = _dict(learner.get("gradient_booster"), "gradient_booster")
    name = booster.get("name")
    if name == "gbtree":
        _gbtree(_dict(booster.get("model"), "the gbtree model"), n_features, n_groups)
    elif name == "dart":
        inner = _dict(booster.get("gbtree"), "dart's gbtree")
        count = _gbtree(_dict(inner.get("model"), "the dart model"), n_features, n_groups)
        _numbers(booster.get("weight_drop"), "weight_drop", count)
    elif name == "gblinear":
        model = _dict(booster.get("model"), "the gblinear model")
        _numbers(model.get("weights"), "gblinear weights", (n_features + 1) * n_groups)
    else:
        raise ModelCheckError(f"the booster is {name!r}, not gbtree, dart or gblinear")
