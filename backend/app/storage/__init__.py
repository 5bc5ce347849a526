"""Pluggable object storage: one async interface, interchangeable backends."""

from app.storage.base import ObjectInfo, Storage, StorageError, StorageUnavailable

__all__ = ["ObjectInfo", "Storage", "StorageError", "StorageUnavailable"]
