"""Content-addressed, chunked storage of DataFrames, Series and ndarrays (the data-versioning engine).

A snapshot is cut into *row-chunks* whose boundaries are chosen by content (content-defined
chunking over rows), and every column of every row-chunk becomes one immutable object in the
object store, named by its SHA-256. Because a boundary depends only on the rows around it,
inserting, deleting or editing rows changes only the objects around the edit: a second version
of a big frame writes only the few chunks that differ, and an unchanged frame writes nothing.

The package is pure: it never touches the metadata database or IPython. It receives two
callables for the object store, ``put(bytes) -> hex digest`` and ``get(hex digest) -> bytes``,
and exchanges a JSON-serializable *manifest* that describes everything needed to rebuild the
object exactly (values, dtypes, nulls, index, column labels and order). Column encodings are
little-endian, uncompressed and deterministic, so equal data gives equal bytes. Period,
interval and sparse dtypes are refused with a ValidationError that lists what is supported;
nothing is ever stored that would not round-trip exactly.

Modules, each importing only those listed before it:

* :mod:`.cdc`: the content-defined chunker (where rows are cut, and how many rows a chunk
  holds for a frame's size: ``target_for``).
* :mod:`.base`: the prepared-column base class and shared byte layouts.
* :mod:`.numeric`: ``raw`` (numpy bool/int/float/complex/datetime64/timedelta64, bytes and
  unicode) and ``masked`` (nullable Int/UInt/Float/boolean); n-D ndarrays by whole rows.
* :mod:`.strings`: ``string`` (pandas string dtypes), ``objstr`` and ``objmixed`` (object).
* :mod:`.categorical`: ``categorical`` (codes per chunk, categories once).
* :mod:`.datetimes`: ``datetimetz`` (tz-aware datetimes).
* :mod:`.arrow`: ``arrow`` (pyarrow-backed ``ArrowDtype`` columns).
* :mod:`.columns`: which encoder a column gets; decoding any column.
* :mod:`.labels`: column labels and index names as JSON.
* :mod:`.index`: the index and the column labels.
* :mod:`.manifest`: the manifest's layout, the objects it references, row-chunk signatures.
* :mod:`.codec`: ``encode``, ``decode`` and ``decode_rows``.

The rest of jupyter_mlops imports from :mod:`.codec`, :mod:`.manifest` and :mod:`.cdc`.
"""

__all__: list[str] = []
