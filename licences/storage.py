"""The licence library's document store: signed OFD and PDF files, addressed by their SM3.

A document is named by the SM3 of its bytes and lives at ``root/ab/cd/<64 hex>``, so the
registry row that holds the digest also proves which bytes it means: reading checks the
digest again, and a file damaged on disk is an error, never a document. Storing is atomic
(a temporary file in the same directory, then ``os.replace``; flushed to disk before the
store answers) and idempotent (the same bytes give the same name; storing them twice writes
nothing new). Documents are never rewritten or deleted here: a licence's lifecycle changes its
registry row, not its files.

Digests come from outside (a URL, a registry row) and are refused unless they are exactly 64
hexadecimal characters, so no digest can name a path outside the store.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from hsm.sm3 import sm3

_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
#: From this many new files on, :meth:`DocumentStore.put_many` makes them durable with one
#: ``syncfs`` instead of an fsync of each file and its directory.
SYNCFS_FROM = 4


class DocumentError(Exception):
    """Base class of the document store's errors."""


class InvalidDigest(DocumentError, ValueError):
    """The text given as a document digest is not 64 hexadecimal characters."""

    def __init__(self, digest: object):
        self.digest = digest
        shown = repr(digest) if len(repr(digest)) <= 80 else repr(digest)[:77] + "..."
        super().__init__(f"{shown} is not a document digest: expected the SM3 of the document as "
                         "64 hexadecimal characters")


class DocumentNotFound(DocumentError, LookupError):
    """No document with this digest is in the store."""

    def __init__(self, digest: str, path: Path):
        self.digest, self.path = digest, path
        super().__init__(f"document {digest} is not in the store (expected at {path})")


class DocumentCorrupted(DocumentError):
    """The stored file's SM3 is not its name: the file was damaged or altered on disk."""

    def __init__(self, digest: str, path: Path, actual: str):
        self.digest, self.path, self.actual = digest, path, actual
        super().__init__(f"document {digest} at {path} is corrupted: its content hashes to {actual}; "
                         "restore the file from a backup (its registry row names the expected SM3)")


def check_digest(digest: object) -> str:
    """The digest in lower case, or :class:`InvalidDigest` if it is not 64 hex characters."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidDigest(digest)
    return digest.lower()


class DocumentStore:
    """Content-addressed files under ``root`` (created on first use).

    ``durable`` flushes each new file and its directory to disk before :meth:`put` or
    :meth:`put_many` returns, so a registry row committed afterwards never outlives its
    document on a power loss.
    """

    def __init__(self, root: Path | str, *, durable: bool = True):
        self.root = Path(root)
        self.durable = durable

    def path(self, digest: str) -> Path:
        """Where the document with this digest is (or would be) stored."""
        d = check_digest(digest)
        return self.root / d[:2] / d[2:4] / d

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SM3 (hex). Storing the same bytes again is a no-op.

        A file already at the digest's path that does not hold these bytes (damaged on disk)
        is replaced by the good copy. Durable as :meth:`put_many` makes it.
        """
        return self.put_many([data])[0]

    def put_many(self, documents: Iterable[bytes]) -> list[str]:
        """Store several documents, durable together: their SM3s (hex), in order.

        Each new file is written to a temporary name in its directory and renamed into place;
        only then — with ``durable`` — is the lot made durable before this returns: up to
        :data:`SYNCFS_FROM` - 1 new files each fsynced with its directory (what one licence
        writes: a sync of its own files only, so its latency does not depend on what the rest
        of the machine has written), more with one ``syncfs`` (what bulk conversion records in
        one transaction: one flush instead of two fsyncs per file). Renaming before the sync is
        safe because nothing names a file until this returns: a crash before that leaves at
        worst files not yet on disk or damaged under their name, which no committed row names
        (rows are committed after this returns) and which a later put replaces when the same
        bytes come again (:meth:`_holds` checks the content, not just the name). A file found
        already holding a document's bytes is synced too: another process may have written it
        a moment ago and not synced it yet, and the caller is about to commit a row naming it.
        Where ``syncfs`` is not available each file and directory is fsynced.
        """
        digests, written, found = [], [], []
        for data in documents:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"a document is bytes, not {type(data).__name__}")
            if not isinstance(data, bytes):
                data = bytes(data)
            digest = sm3(data).hex()
            digests.append(digest)
            target = self.path(digest)
            if target in written or target in found:
                continue
            if self._holds(target, digest):
                found.append(target)
                continue
            self._write(target, data)
            written.append(target)
        synced = written + found
        if self.durable and synced and (len(written) < SYNCFS_FROM or not _syncfs(self.root)):
            for target in synced:
                _fsync_path(target)
            for directory in dict.fromkeys(t.parent for t in synced):
                self._sync_directory(directory)
        return digests

    def _write(self, target: Path, data: bytes) -> None:
        """``data`` at ``target`` atomically: a temporary file in the same directory, renamed.
        The directory is made when the temporary file finds it missing (not asked first: in a
        store that has been in use it is there)."""
        try:
            fd, temp = _create_temporary(target.parent)
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = _create_temporary(target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def get(self, digest: str) -> bytes:
        """The document's bytes, after checking that they still hash to ``digest``."""
        d = check_digest(digest)
        target = self.path(d)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise DocumentNotFound(d, target) from None
        actual = sm3(data).hex()
        if actual != d:
            raise DocumentCorrupted(d, target, actual)
        return data

    @staticmethod
    def _holds(target: Path, digest: str) -> bool:
        try:
            return sm3(target.read_bytes()).hex() == digest
        except FileNotFoundError:
            return False

    @staticmethod
    def _sync_directory(directory: Path) -> None:
        # The rename is durable only once the directory entry is; not possible on every OS.
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


#: Temporary names in this process: with the process ID, unique among live writers; O_EXCL
#: refuses a name a dead process with the same ID left behind, and the next number is tried.
_TEMPORARY_NUMBERS = itertools.count()


def _create_temporary(directory: Path) -> tuple[int, str]:
    """A new file (0600, as mkstemp makes them) in ``directory`` for writing: its descriptor and
    path. What tempfile.mkstemp does, without drawing a random name for each of the two files
    of every licence."""
    pid = os.getpid()
    for _ in range(100):
        path = f"{directory}/.incoming-{pid}-{next(_TEMPORARY_NUMBERS)}.part"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                           0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {directory}")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(directory: Path) -> bool:
    """Flush the file system holding ``directory`` (Linux ``syncfs``); False where unavailable."""
    libc = _libc()
    if libc is None:
        return False
    fd = os.open(directory, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs of {directory} failed: {os.strerror(error)}")
    finally:
        os.close(fd)
    return True


@functools.cache
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs.argtypes = [ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None
