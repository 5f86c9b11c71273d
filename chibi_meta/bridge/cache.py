"""Finished assets, cached under the sha256 of their canonical request.

:class:`AssetCache` is an LRU in memory bounded by bytes, backed optionally by a folder on disk
that several server replicas may share: files are written atomically (temp + rename), named by
the request key, so a reader never sees half a file and two replicas writing the same key write
the same bytes. A disk hit touches the file's mtime, so when the folder grows past its budget each
replica evicts the files least recently used by any replica (down to 90 % of the budget).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from chibi_meta import limits
from chibi_meta.atomic import atomic_write_bytes

log = logging.getLogger("chibi_meta.bridge.cache")
_KEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Asset:
    data: bytes
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> Asset:
        return cls(data, hashlib.sha256(data).hexdigest())


class AssetCache:
    """LRU of assets by key; thread-safe. ``disk_dir`` adds a shared on-disk layer."""

    def __init__(
        self,
        memory_bytes: int = limits.CACHE_MEMORY_BYTES,
        disk_dir: str | os.PathLike | None = None,
        disk_bytes: int = limits.CACHE_DISK_BYTES,
    ) -> None:
        self.memory_bytes = max(0, int(memory_bytes))
        self.disk_bytes = max(0, int(disk_bytes))
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self._mem: OrderedDict[str, Asset] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        self._disk_used = 0
        if self.disk_dir is not None:
            self.disk_dir.mkdir(parents=True, exist_ok=True)
            self._disk_used = sum(size for _, size, _ in self._disk_files())

    # -- memory ------------------------------------------------------------------------------
    def get_memory(self, key: str) -> Asset | None:
        with self._lock:
            a = self._mem.get(key)
            if a is not None:
                self._mem.move_to_end(key)
            return a

    def _put_memory(self, key: str, asset: Asset) -> None:
        size = len(asset.data)
        if size > self.memory_bytes:
            return
        with self._lock:
            old = self._mem.pop(key, None)
            if old is not None:
                self._used -= len(old.data)
            self._mem[key] = asset
            self._used += size
            while self._used > self.memory_bytes and self._mem:
                _, ev = self._mem.popitem(last=False)
                self._used -= len(ev.data)

    # -- disk ----------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return Path(self.disk_dir or ".") / key[:2] / f"{key}.bin"

    def get_disk(self, key: str) -> Asset | None:
        """Blocking (file I/O): call from a worker thread."""
        if self.disk_dir is None or not _KEY.match(key):
            return None
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        with contextlib.suppress(OSError):  # last use, for LRU eviction (a read-only cache still serves)
            os.utime(path)
        asset = Asset.of(data)
        self._put_memory(key, asset)
        return asset

    def _put_disk(self, key: str, asset: Asset) -> None:
        path = self._path(key)
        if path.exists():
            return
        try:
            atomic_write_bytes(path, asset.data)
        except Exception as e:  # a full or read-only disk must not fail the request
            log.warning("event=cache_write_failed key=%s error=%r", key, str(e))
            return
        self._disk_used += len(asset.data)
        if self._disk_used > self.disk_bytes:
            self._evict_disk()

    def _disk_files(self) -> list[tuple[float, int, Path]]:
        out = []
        if self.disk_dir is None:
            return out
        for p in self.disk_dir.glob("??/*.bin"):
            with contextlib.suppress(OSError):
                st = p.stat()
                out.append((st.st_mtime, st.st_size, p))
        return out

    def _evict_disk(self) -> None:
        files = sorted(self._disk_files())
        total = sum(s for _, s, _ in files)
        target = self.disk_bytes * 0.9
        for _, size, p in files:
            if total <= target:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
        self._disk_used = total

    # -- both ----------------------------------------------------------------------------------
    def put(self, key: str, asset: Asset) -> None:
        """Store in memory, and on disk when configured (blocking: call from a worker thread)."""
        self._put_memory(key, asset)
        if self.disk_dir is not None and _KEY.match(key):
            self._put_disk(key, asset)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._mem),
                "bytes": self._used,
                "capacity_bytes": self.memory_bytes,
                "disk_bytes": self._disk_used,
            }
