"""What both directions of a file transfer share: limits, names, statuses (see transfer.py)."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from wavry.rift import rift_pb2

DEFAULT_MAX_FILE_SIZE = 4 * 1024**3
DEFAULT_SHARE = 0.15
CLIPBOARD_FILENAME = ".wavry-clipboard.txt"
"""Reserved offer name: the content is clipboard text (UTF-8), not a file for the disk."""
DEFAULT_CLIPBOARD_MAX = 1 << 20
WRITEBACK_BYTES = 16 << 20  # start writeback of received data every this many bytes
# Spare capacity for file data beyond the floor (see SpareCapacity)
SPARE_START_KBPS = 2_000.0
SPARE_GROWTH = 1.3  # per SPARE_STEP_S while the path is clean, below the last back-off
SPARE_PROBE = 1.05  # per SPARE_STEP_S above it
SPARE_DECREASE = 0.7  # on a congestion sign (at most once per SPARE_HOLD_S)
SPARE_STEP_S = 0.1
SPARE_HOLD_S = 0.3  # no growth (and no further decrease) for this long after a congestion sign
SPARE_MAX_KBPS = 800_000.0  # 100 MB/s: more than a loopback session's CPU can seal anyway
CLEAN_QUEUE_MS = 10.0  # DELTA's queueing-delay estimate below this: no standing queue
CLEAN_LOSS = 0.01
MAX_FILENAME_BYTES = 200
MAX_CHUNK_SIZE = 65507
#: a receiver refuses smaller chunks: every chunk costs per-chunk state and a datagram, and a
#: sender's plan never goes below ~1,100 bytes (the smallest datagram size, 1,200, less headers)
MIN_CHUNK_SIZE = 512
MAX_INCOMING = 8  # transfers in progress at once, clipboard text included
#: an incoming transfer that receives nothing for this long is given up (paused ones and
#: those of a session that ended wait RESUME_KEEP_S for a resume; clipboard text CLIPBOARD_IDLE_S)
IDLE_TIMEOUT_S = 60.0
RESUME_KEEP_S = 600.0
CLIPBOARD_IDLE_S = 30.0
#: free disk space left over after every transfer in progress is complete
DISK_RESERVE_BYTES = 64 << 20
FINISHED_MEMORY = 256  # verdicts remembered for repeated offers
HEADER_REPEAT_S = 1.0
#: how often each side's files feature polls: while a file's chunks leave (its token bucket), and
#: while files are only offered, waiting for a verdict or paused (header repeats, give-up)
FILE_TICK_S = 0.01
IDLE_TICK_S = 0.25
GIVE_UP_S = 30.0
STALL_S = 0.5
BURST_S = 0.02
ADOPT_IDLE_S = 2.0

_Status = rift_pb2.FileStatus
_NEXT = re.compile(r"^next=(0|[1-9][0-9]{0,9})$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TransferError(Exception):
    """A file cannot be offered (missing, unreadable, too large)."""


class UnsafeFilename(ValueError):
    """An offered name that must be refused (path traversal, control characters, empty)."""


class Role(enum.IntEnum):
    HOST = 0
    CLIENT = 1


def format_next(index: int) -> str:
    return f"next={index}"


def parse_next(message: str) -> int | None:
    """The chunk index of an ``IN_PROGRESS`` status message ``next=<N>``; None if malformed."""
    m = _NEXT.match(message)
    return int(m.group(1)) if m else None


def sanitize_filename(name: str, max_bytes: int = MAX_FILENAME_BYTES) -> str:
    """A safe local file name for an offered name, or :class:`UnsafeFilename`.

    Refused outright: path separators (``/`` and ``\\``), ``..``, control characters, and names
    that are empty after cleaning. Cleaned: leading dots and spaces (no hidden files), trailing
    dots and spaces, and the length (capped at ``max_bytes`` UTF-8 bytes, extension kept).
    """
    if "/" in name or "\\" in name:
        raise UnsafeFilename("file name contains a path separator")
    if ".." in name:
        raise UnsafeFilename("file name contains '..'")
    if _CONTROL.search(name):
        raise UnsafeFilename("file name contains control characters")
    clean = name.lstrip(". ").rstrip(". ")
    if not clean:
        raise UnsafeFilename("file name is empty")
    if len(clean.encode()) > max_bytes:
        stem, dot, ext = clean.rpartition(".")
        if not dot or len(ext.encode()) > 16:
            stem, ext = clean, ""
        room = max_bytes - len(ext.encode()) - (1 if ext else 0)
        stem = stem.encode()[:room].decode(errors="ignore").rstrip(". ")
        clean = f"{stem}.{ext}" if ext else stem
        if not clean:
            raise UnsafeFilename("file name is empty")
    return clean


def default_download_dir() -> Path:
    """``$XDG_DOWNLOAD_DIR/wavry`` (from the environment or user-dirs.dirs), else
    ``~/Downloads/wavry``."""
    env = os.environ.get("XDG_DOWNLOAD_DIR")
    if not env:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        with contextlib.suppress(OSError):
            for line in (config / "user-dirs.dirs").read_text().splitlines():
                if line.startswith("XDG_DOWNLOAD_DIR="):
                    env = (
                        line.split("=", 1)[1].strip().strip('"').replace("$HOME", str(Path.home()))
                    )
    base = Path(env) if env else Path.home() / "Downloads"
    return base / "wavry"


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file (blocking: run it in an executor for large files)."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _status(file_id: int, status: int, message: str) -> rift_pb2.Message:
    fs = rift_pb2.FileStatus(file_id=file_id, status=status, message=message)  # type: ignore[arg-type]
    return rift_pb2.Message(control=rift_pb2.ControlMessage(file_status=fs))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: ``bulk`` ones (file chunks) go on the paced, rate-shared lane."""

    message: rift_pb2.Message
    bulk: bool = False


def new_file_id(role: Role) -> int:
    value = secrets.randbits(31) << 1 | int(role)
    return value if value > 1 else 2 | int(role)


class ChunkSet:
    """Which chunk indices arrived: one bit each (a 4 GiB file in 512-byte chunks is 1 MiB)."""

    __slots__ = ("_bits", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._bits = bytearray((size + 7) // 8)

    def __contains__(self, index: int) -> bool:
        return bool(self._bits[index >> 3] >> (index & 7) & 1)

    def add(self, index: int) -> None:
        self._bits[index >> 3] |= 1 << (index & 7)
