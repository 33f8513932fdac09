"""The manifest: what a data version stores about its chunks, and what can be read from it.

A manifest is a plain JSON-serializable dict (the data version stores it as one more
object, serialized with sorted keys, and adds its ``content_hash``)::

    format        "jupyter_mlops.chunks"
    version       2 (version 1 manifests, cut by ``cdc-rowhash-v1``, still decode: the
                  boundaries only matter when writing)
    kind          "dataframe" | "series" | "ndarray"
    name          the Series name (a JSON label, see .labels)
    shape, order  an ndarray's shape and memory order ("C" or "F")
    nrows         rows in all
    row_chunks    the row count of each row-chunk, in order
    chunking      how the rows were cut (see .cdc.parameters); its ``target_rows`` is what
                  the dataset's next version is cut with while it fits (.cdc.target_for)
    columns       one spec per column: "name", "enc", "dtype", encoding parameters, "v"
                  (the encoding's version) and "chunks", one object hash per row-chunk
    index         the index spec ("range", "runs", "multi" or "index"; see .index)
    columns_index a DataFrame's column labels, an index spec stored whole

A categorical's categories and a MultiIndex's levels are nested specs with their own
``chunks``. This module reads manifests without reading any object: which objects a
version keeps alive (every hash in a ``chunks`` or ``objects`` list, at any depth), and
which row-chunks two versions share.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

import numpy as np

from ...errors import ValidationError
from .index import runs_values

__all__ = ["FORMAT", "VERSION", "check_manifest", "chunk_hashes", "row_chunk_signatures"]

FORMAT = "jupyter_mlops.chunks"
VERSION = 2


def check_manifest(manifest: Any) -> None:
    """Refuse what is not a chunk manifest, or one written by a newer jupyter_mlops."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValidationError(
            "Not a data snapshot manifest (expected a dict with format "
            f"{FORMAT!r}); pass the manifest that encode() returned."
        )
    if int(manifest.get("version", 0)) > VERSION:
        raise ValidationError(
            f"This data snapshot was written by a newer jupyter_mlops (manifest version "
            f"{manifest.get('version')}, this one reads up to {VERSION}). Upgrade jupyter_mlops."
        )


def chunk_hashes(manifest: dict) -> set[str]:
    """Every object hash the manifest references (row-chunks, categories, levels, labels).

    Garbage collection keeps these objects alive and ``doctor`` checks that they exist.
    """
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("chunks", "objects") and isinstance(value, list):
                    found.update(v for v in value if isinstance(v, str))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(manifest)
    return found


def row_chunk_signatures(manifest: dict) -> list[str]:
    """One digest per row-chunk over that chunk's objects in every column and the index.

    Two versions' row-chunks with equal signatures hold the same rows (same values, dtypes and
    column labels), so a diff can skip them without reading any data. A RangeIndex is
    positional and not part of the signature.
    """
    check_manifest(manifest)
    per_row: list[tuple[str, list[str]]] = []
    for spec in manifest.get("columns", []):
        per_row.append(_spec_identity(spec))
    index = manifest.get("index")
    if index:
        if index["type"] == "index":
            per_row.append(_spec_identity(index["column"]))
        elif index["type"] == "multi":
            for level in index["levels"]:
                per_row.append(_spec_identity(level["codes"]))
        elif index["type"] == "runs":
            values = runs_values(index["runs"], np.dtype(index["dtype"]))
            bounds = np.concatenate([[0], np.cumsum(manifest["row_chunks"], dtype=np.int64)])
            digests = [
                hashlib.sha256(values[int(s) : int(e)].tobytes()).hexdigest()
                for s, e in itertools.pairwise(bounds)
            ]
            per_row.append((f"runs:{index['dtype']}", digests))
    signatures = []
    for i in range(len(manifest["row_chunks"])):
        h = hashlib.sha256()
        for static, chunks in per_row:
            h.update(static.encode())
            h.update(b":")
            h.update(chunks[i].encode())
            h.update(b"\n")
        signatures.append(h.hexdigest())
    return signatures


def _spec_identity(spec: dict[str, Any]) -> tuple[str, list[str]]:
    static = {k: v for k, v in spec.items() if k != "chunks"}
    return json.dumps(static, sort_keys=True, default=str), spec["chunks"]
