"""Checkpoints: the daemon's state with the offsets it covers, written so that a crash
at any instant leaves a readable one behind.

A checkpoint file is gzip-compressed text: a header line
``driftline-checkpoint <format version> <sha256 of the body>`` then the body, a JSON
document (Python's dialect: NaN and Infinity are written as such) holding the offsets
and the state. Files are written to a temporary name, fsynced and renamed, then the
directory is fsynced; the last two are kept, so that a damaged newest one falls back to
its predecessor. Nothing here is pickle: a checkpoint is data, read by a schema.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import io
import json
import logging
import os
import re
import secrets
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol

import msgspec

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointText",
    "Finite",
    "LocalStore",
    "ShardStore",
    "compress",
    "decode",
    "encode",
    "release_free_memory",
    "to_text",
]

log = logging.getLogger(__name__)

MAGIC: Final = b"driftline-checkpoint"
FORMAT_VERSION: Final = 1
KEEP: Final = 2
_NAME = re.compile(r"^checkpoint-(\d{12})\.json\.gz$")

Offsets = Mapping[tuple[str, int], int]


class CheckpointError(Exception):
    """A checkpoint that cannot be written or read; ``kind`` says which way it failed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # write, read, corrupt, incompatible


@dataclass(frozen=True)
class Checkpoint:
    """State plus the next offset to read of every partition it covers."""

    sequence: int
    created_at: float
    offsets: Offsets
    state: Mapping[str, Any]
    group_id: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: References the state names by profile id: when writing, objects with
    #: ``json_bytes`` (made once per reference, spliced in as is); when read, their data.
    references: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointText:
    """A checkpoint's JSON text, in pieces, and the references to splice into it
    (:func:`to_text`).

    Made on the thread that owns the state (the state shares objects with the live
    one); what :func:`compress` does with it reads nothing that changes, so it may run
    on another thread. The pieces are never joined (they are tens of MiB).
    """

    sequence: int
    pieces: tuple[bytes, ...]
    references: tuple[tuple[str, Any], ...]

    @property
    def text(self) -> bytes:
        """The JSON text, joined."""
        return b"".join(self.pieces)


@dataclass(frozen=True)
class Finite:
    """A part of a state made of JSON types only, without NaN or infinity (the join
    store's entries: decoded events' ids, finite numbers, strings and bools; mappings,
    lists and tuples of them). :func:`to_text` writes it with msgspec, six times as fast
    as the json module, which the rest of a state needs for its NaN, and reads it only
    then: it may be live state, as long as nothing changes it meanwhile."""

    value: Any


def to_text(checkpoint: Checkpoint) -> CheckpointText:
    """The part of :func:`encode` that reads the state: its JSON text."""
    pieces: list[bytes] = []
    # Each Finite is written as a placeholder string, replaced by its text afterwards;
    # the token is random, so that no string in the state can pass for one.
    token = secrets.token_hex(16)

    def finite(value: Any) -> str:
        if not isinstance(value, Finite):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        pieces.append(msgspec.json.encode(value.value))
        return f"{token}-{len(pieces) - 1}"

    text = json.dumps(
        {
            "sequence": checkpoint.sequence,
            "created_at": checkpoint.created_at,
            "group_id": checkpoint.group_id,
            "offsets": [[t, p, o] for (t, p), o in sorted(checkpoint.offsets.items())],
            "meta": dict(checkpoint.meta),
            "state": checkpoint.state,
        },
        separators=(",", ":"),
        default=finite,
    ).encode()
    # The placeholders come in the order their pieces were written.
    parts = re.split(b'"%s-[0-9]+"' % token.encode(), text) if pieces else [text]
    return CheckpointText(
        checkpoint.sequence,
        tuple(chain.from_iterable(zip(parts, [*pieces, b""], strict=True)))[:-1],
        tuple(sorted(checkpoint.references.items())),
    )


def compress(checkpoint: CheckpointText) -> bytes:
    """The rest of :func:`encode`: header, checksum and gzip of the body."""
    out = io.BytesIO()
    compress_to(checkpoint, out)
    return out.getvalue()


def compress_to(checkpoint: CheckpointText, out: BinaryIO) -> None:
    """:func:`compress`, written to ``out`` as it is made (a file: not held in memory)."""
    pieces, references = checkpoint.pieces, checkpoint.references
    # The body is written piece by piece, twice (checksum, then gzip): the references
    # are most of its bytes and never held all at once, nor the body as a whole.
    digest = hashlib.sha256()
    for piece in _body(pieces, references):
        digest.update(piece)
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as stream:
        stream.write(b"%s %d %s\n" % (MAGIC, FORMAT_VERSION, digest.hexdigest().encode()))
        for piece in _body(pieces, references):
            stream.write(piece)


def encode(checkpoint: Checkpoint) -> bytes:
    """A checkpoint as its file holds it."""
    return compress(to_text(checkpoint))


def _body(
    pieces: tuple[bytes, ...], references: Iterable[tuple[str, Any]]
) -> Iterator[bytes | memoryview]:
    """The body's JSON: the state's object with ``references`` added as its last member,
    each reference's text made once per reference (:attr:`ModelReference.json_bytes`)."""
    yield from pieces[:-1]
    yield memoryview(pieces[-1])[:-1]  # a view, without the object's closing brace
    yield b',"references":{'
    for i, (key, reference) in enumerate(references):
        yield b"%s%s:" % (b"," if i else b"", json.dumps(key).encode())
        yield reference.json_bytes
    yield b"}}"


def decode(data: bytes) -> Checkpoint:
    """Inverse of :func:`encode`; :class:`CheckpointError` for anything damaged or foreign."""
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise CheckpointError("corrupt", f"not a readable gzip stream ({exc})") from None
    header, _, body = text.partition(b"\n")
    parts = header.split(b" ")
    if len(parts) != 3 or parts[0] != MAGIC:
        raise CheckpointError("corrupt", "no driftline checkpoint header")
    if parts[1] != str(FORMAT_VERSION).encode():
        raise CheckpointError(
            "incompatible",
            f"format version {parts[1].decode(errors='replace')}; this driftline reads "
            f"{FORMAT_VERSION}",
        )
    if hashlib.sha256(body).hexdigest().encode() != parts[2]:
        raise CheckpointError("corrupt", "checksum mismatch")
    try:
        doc = json.loads(body)
        return Checkpoint(
            sequence=int(doc["sequence"]),
            created_at=float(doc["created_at"]),
            offsets={(str(t), int(p)): int(o) for t, p, o in doc["offsets"]},
            state=doc["state"],
            group_id=str(doc["group_id"]),
            meta=doc["meta"],
            references=doc.get("references", {}),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError("corrupt", f"malformed body ({exc!r:.200})") from None


@dataclass
class LoadReport:
    """What loading found: the checkpoint used, if any, and the files passed over."""

    checkpoint: Checkpoint | None = None
    path: Path | None = None
    failures: list[tuple[Path, CheckpointError]] = field(default_factory=list)


class ShardStore(Protocol):
    """Checkpoints by shard (partition number), shared by the instances of a group."""

    def save(self, shard: int, data: bytes) -> None:
        """Write one shard's encoded checkpoint durably; :class:`CheckpointError` if not."""
        ...

    def load(self, shards: Iterable[int]) -> dict[int, bytes]:
        """The latest encoded checkpoint of each shard that has one."""
        ...

    def close(self) -> None: ...


class LocalStore:
    """Checkpoints in a directory (made 0700; files 0600), the last two kept."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _prepare(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.directory.stat().st_mode & 0o077:
                os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise CheckpointError(
                "write", f"cannot prepare {self.directory}: {exc.strerror}"
            ) from None

    def files(self) -> list[tuple[int, Path]]:
        """(sequence, path) of the checkpoint files present, newest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CheckpointError(
                "corrupt", f"cannot list {self.directory}: {exc.strerror}"
            ) from None
        found = [(int(m.group(1)), self.directory / n) for n in names if (m := _NAME.match(n))]
        return sorted(found, reverse=True)

    def save(self, checkpoint: Checkpoint) -> int:
        """Write ``checkpoint`` durably; the bytes written. Older files beyond the last
        two are removed only once it is safe on disk."""
        return self.write(to_text(checkpoint))

    def write(self, checkpoint: CheckpointText) -> int:
        """:meth:`save` of a checkpoint made text already (on any thread: the service's
        writer thread calls it)."""
        self._prepare()
        path = self.directory / f"checkpoint-{checkpoint.sequence:012d}.json.gz"
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=self.directory)
            with os.fdopen(fd, "wb") as out:
                compress_to(checkpoint, out)
                size = out.tell()
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            tmp = None
            _fsync_directory(self.directory)
        except OSError as exc:
            raise CheckpointError("write", f"cannot write {path}: {exc.strerror}") from None
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        for _, old in self.files()[KEEP:]:
            try:
                old.unlink()
            except OSError as exc:
                log.warning("cannot remove old checkpoint %s: %s", old, exc.strerror)
        return size

    def load(self) -> LoadReport:
        """The newest readable checkpoint; damaged ones are reported and set aside."""
        report = LoadReport()
        try:
            files = self.files()
        except CheckpointError as exc:
            report.failures.append((self.directory, exc))
            return report
        for _, path in files:
            try:
                checkpoint = decode(path.read_bytes())
            except OSError as exc:
                error = CheckpointError("corrupt", f"cannot read: {exc.strerror}")
            except CheckpointError as exc:
                error = exc
            else:
                report.checkpoint, report.path = checkpoint, path
                return report
            report.failures.append((path, error))
            _set_aside(path)
        return report


def _set_aside(path: Path) -> None:
    """Rename a damaged checkpoint so that it is kept for inspection but never read again."""
    try:
        os.replace(path, path.with_name(path.name + ".damaged"))
    except OSError as exc:
        log.warning("cannot set aside damaged checkpoint %s: %s", path, exc.strerror)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def release_free_memory() -> None:
    """Hand the memory a checkpoint freed back to the system (glibc's ``malloc_trim``).

    A checkpoint builds the whole state and its encoding, tens of MiB, and frees them
    at once; glibc keeps such memory mapped, so the daemon's RSS would creep up from
    one checkpoint to the next (``benchmarks/model_memory.py`` measured it). Does
    nothing where the C library has no ``malloc_trim`` (musl, macOS).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None


_MALLOC_TRIM = _malloc_trim()
