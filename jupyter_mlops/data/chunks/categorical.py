"""Encoder for pandas categoricals (``categorical``).

Each row-chunk holds the integer codes (raw little-endian bytes); the categories are stored
once, as their own object, through whichever encoder their dtype needs. That nested encoding
is the caller's (:mod:`.columns` passes its ``encode_whole``), so this module does not
depend on the other encoders. Categoricals are the last choice as a chunking key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import le
from .numeric import RawColumn, raw_concat

__all__ = ["CategoricalColumn", "StoreWhole", "decode_categorical", "prepare_categorical"]

StoreWhole = Callable[[Any, Callable[[bytes], str], str], dict[str, Any]]
"""``(values, put, where) -> spec``: stores a small array as one object, returns its spec."""


class CategoricalColumn(RawColumn):
    """The codes of a categorical per row-chunk; ``finish`` stores its categories."""

    def key_rank(self) -> int | None:
        return 3

    def __init__(
        self,
        codes: np.ndarray,
        categories: Any,
        spec: dict[str, Any],
        where: str,
        store_whole: StoreWhole,
    ):
        super().__init__(codes, spec)
        self.categories = categories
        self.where = where
        self.store_whole = store_whole
        self._cat_hash: np.ndarray | None = None

    def key(self, start: int, stop: int) -> np.ndarray | None:
        if self._cat_hash is None:
            import pandas as pd

            hashed = pd.util.hash_pandas_object(pd.Index(self.categories), index=False)
            self._cat_hash = np.append(hashed.to_numpy(dtype=np.uint64), np.uint64(0x5A5A))
        codes = self.arr[start:stop].astype(np.int64)
        codes[codes < 0] = len(self._cat_hash) - 1
        return self._cat_hash[codes]

    def finish(self, put: Callable[[bytes], str]) -> None:
        where = f"the categories of {self.where}"
        self.spec["categories"] = self.store_whole(self.categories, put, where)


def prepare_categorical(values: Any, where: str, store_whole: StoreWhole) -> CategoricalColumn:
    """A pandas Categorical as a ``categorical`` column (categories stored by ``store_whole``)."""
    dtype = values.dtype
    codes = np.ascontiguousarray(values.codes)
    spec = {
        "enc": "categorical",
        "dtype": "category",
        "ordered": bool(dtype.ordered),
        "codes": le(codes.dtype).str,
    }
    return CategoricalColumn(
        codes.astype(le(codes.dtype)), dtype.categories, spec, where, store_whole
    )


def decode_categorical(spec: dict[str, Any], blobs: list[bytes], categories: Any) -> Any:
    """The pandas Categorical of ``categorical`` chunks, given its decoded categories (an Index)."""
    import pandas as pd

    dtype = pd.CategoricalDtype(categories=categories, ordered=spec["ordered"])
    codes = raw_concat(blobs, {"dtype": spec["codes"]})
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
