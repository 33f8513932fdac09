"""The content-addressed object store: immutable blobs named by their SHA-256, over fsspec.

Writes are atomic (a temp file renamed into place on local disks; a single put on object
stores), nothing is overwritten, and every read verifies the bytes against their name.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

from ..errors import CorruptObjectError, NotFoundError, StoreError
from ..redact import redact

__all__ = ["ObjectStore", "hash_bytes"]

_HEX = set("0123456789abcdef")


def hash_bytes(data: bytes | memoryview) -> str:
    """The object name of ``data``: its SHA-256 in hex."""
    return hashlib.sha256(data).hexdigest()


class ObjectStore:
    """Immutable blobs under ``url``: ``<url>/<hash[:2]>/<hash[2:]>``."""

    def __init__(self, url: str):
        import fsspec.core

        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(self.fs)
        self._folders: set[str] = set()

    def _path(self, digest: str) -> str:
        return f"{self.root}/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        """Whether the object is present (its bytes are not checked)."""
        path = self._path(digest)
        return os.path.exists(path) if self.local else self.fs.exists(path)

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its hash; storing the same bytes again writes nothing."""
        return self.write(data)[0]

    def write(self, data: bytes | memoryview) -> tuple[str, bool]:
        """Store ``data``; returns (hash, True if new bytes were written)."""
        digest = hash_bytes(data)
        path = self._path(digest)
        if self.exists(digest):
            if self.local:
                # A reused object is young again, so `gc` (which spares recent objects) cannot
                # delete it between this write and the commit of what references it.
                try:
                    os.utime(path)
                except OSError:
                    pass
            return digest, False
        try:
            if self.local:
                # Local disks: write a temp file beside the target, then rename it into place.
                folder = path.rsplit("/", 1)[0]
                if folder not in self._folders:
                    os.makedirs(folder, exist_ok=True)
                    self._folders.add(folder)
                tmp = f"{folder}/.tmp-{uuid.uuid4().hex}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    view = memoryview(data)
                    if view.format != "B" or view.ndim != 1:
                        view = view.cast("B")  # slice by bytes, whatever the element type
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            else:
                self.fs.pipe_file(path, bytes(data))
        except OSError as exc:
            raise StoreError(
                f"Cannot write to the object store at {redact(self.url)}: {redact(exc)}. "
                "Check that the folder is writable and the disk has space."
            ) from exc
        return digest, True

    def delete(self, digest: str) -> None:
        """Remove an object (only garbage collection calls this)."""
        try:
            self.fs.rm_file(self._path(digest))
        except FileNotFoundError:
            pass

    def modified(self, digest: str) -> float | None:
        """When the object was written (seconds since the epoch), if the filesystem knows."""
        try:
            info = self.fs.info(self._path(digest))
        except FileNotFoundError:
            return None
        value = info.get("mtime") or info.get("LastModified") or info.get("created")
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        return float(value) if value is not None else None

    def get(self, digest: str, verify: bool = True) -> bytes:
        """The bytes of an object, checked against its hash unless ``verify`` is False."""
        path = self._path(digest)
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            raise NotFoundError(
                f"Object {digest[:12]}… is missing from {redact(self.url)}. "
                "Run `jupyter-mlops doctor` to list damaged runs."
            ) from None
        if verify:
            actual = hash_bytes(data)
            if actual != digest:
                raise CorruptObjectError(
                    f"Object {digest[:12]}… in {redact(self.url)} is corrupt: its bytes hash to "
                    f"{actual[:12]}…. Run `jupyter-mlops doctor` to find every damaged object."
                )
        return data

    def verify(self, digest: str) -> bool:
        """True when the object exists and its bytes match its name."""
        try:
            self.get(digest)
        except (CorruptObjectError, NotFoundError):
            return False
        return True

    def size(self, digest: str) -> int:
        """Size in bytes of a stored object."""
        return int(self.fs.size(self._path(digest)))

    def __iter__(self) -> Iterator[str]:
        """Every object hash present under the root (temp files excluded)."""
        if not self.fs.exists(self.root):
            return
        for prefix in sorted(self.fs.ls(self.root, detail=False)):
            head = prefix.rstrip("/").rsplit("/", 1)[-1]
            if len(head) != 2 or not set(head) <= _HEX:
                continue
            for entry in sorted(self.fs.ls(prefix, detail=False)):
                tail = entry.rstrip("/").rsplit("/", 1)[-1]
                if len(tail) == 62 and set(tail) <= _HEX:
                    yield head + tail


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
