"""Where checkpoints go as training writes them: ``sink.put(i, bytes, h_i)``.

The worker plugs in its uploader (any object with ``put``); :class:`DirectorySink` keeps
them on local disk and is what crash-resume reads back; :class:`MemorySink` is for tests
and verifiers; :class:`Tee` feeds several.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from veritrain.checkpoint import checkpoint_hash, decode
from veritrain.errors import CheckpointFormatError


class CheckpointSink(Protocol):
    def put(self, index: int, data: bytes, digest: bytes) -> None: ...


class MemorySink:
    def __init__(self) -> None:
        self.items: dict[int, tuple[bytes, bytes]] = {}

    def put(self, index: int, data: bytes, digest: bytes) -> None:
        self.items[index] = (data, digest)

    def hashes(self) -> list[bytes]:
        return [self.items[i][1] for i in sorted(self.items)]

    def data(self, index: int) -> bytes:
        return self.items[index][0]


class Tee:
    def __init__(self, *sinks: CheckpointSink) -> None:
        self.sinks = sinks

    def put(self, index: int, data: bytes, digest: bytes) -> None:
        for sink in self.sinks:
            sink.put(index, data, digest)


_NAME = re.compile(r"^ckpt-(\d{6})\.vtck$")


class DirectorySink:
    """``<dir>/ckpt-000012.vtck``, written to a temporary name and renamed into place, so a
    process killed at any moment leaves only whole checkpoints (``fsync=True`` also survives a
    power cut, at some cost per checkpoint)."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, index: int) -> Path:
        return self.directory / f"ckpt-{index:06d}.vtck"

    def put(self, index: int, data: bytes, digest: bytes) -> None:
        tmp = self.directory / f".ckpt-{index:06d}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, self.path(index))

    def indices(self) -> list[int]:
        found = (_NAME.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def read(self, index: int) -> bytes:
        return self.path(index).read_bytes()

    def chain(self) -> list[bytes]:
        """``h_0..h_m`` for the contiguous run of readable checkpoints from 0."""
        hashes: list[bytes] = []
        for i in self.indices():
            if i != len(hashes):
                break
            hashes.append(checkpoint_hash(self.read(i)))
        return hashes

    def latest(self) -> tuple[int, bytes] | None:
        """The last checkpoint of the contiguous run from 0 that decodes, or None."""
        best = None
        for i in range(len(self.chain())):
            data = self.read(i)
            try:
                decode(data)
            except CheckpointFormatError:
                break
            best = (i, data)
        return best
