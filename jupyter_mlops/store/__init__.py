"""The store layer: a metadata database and a content-addressed object store."""

from .location import StoreLocation, resolve_location
from .store import Store, current_store, open_store, reset_current_store

__all__ = [
    "Store",
    "StoreLocation",
    "current_store",
    "open_store",
    "reset_current_store",
    "resolve_location",
]
