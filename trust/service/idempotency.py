"""Idempotency keys: a retried request gets the first answer, and creates nothing new.

A request with an ``Idempotency-Key`` first *claims* the key by inserting a pending row; the
unique (API key, idempotency key) constraint lets exactly one of any number of concurrent
requests win, on SQLite and PostgreSQL alike. The winner runs and stores its answer; a
loser waits for that answer (up to the configured wait) and returns it, or answers 409
``request_in_progress``. A request with the same key but a different method, path or body
(compared by SM3 fingerprint) is ``idempotency_key_reused``.

Only successful answers are stored: a request that failed created nothing, so its key is
released and a corrected retry may use it again. Stored answers expire after the TTL (24 h
by default): an expired row is never replayed, and expired rows are deleted at most once a
minute per process (not on every claim, and never in the wait loop). A sealed document is
not kept in the row: it goes to a content-addressed :class:`~licences.storage.DocumentStore`
and the row keeps its SM3 and media type; the file is deleted with the expired row.

A waiting retry holds a worker thread, so the wait is short (2 s by default) and polls with
a growing interval; after it the answer is 409 ``request_in_progress`` with ``Retry-After``.

Known limit: if the process dies between the act and storing its answer, the key stays
pending until it expires, and retries get 409 with the time it was claimed — the caller must
then look the licence up (``GET /licences?…``) rather than issue again.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from hsm.sm3 import sm3
from ledger.database import Database
from licences.storage import DocumentStore

from .errors import ApiError
from .models import IdempotencyRecord

MAX_KEY_CHARS = 255
POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 0.4
PURGE_INTERVAL_SECONDS = 60.0
PURGE_BATCH = 500
RETRY_AFTER_SECONDS = 2
#: The key of a stored answer's body that names a document in the store (its SM3).
DOCUMENT_KEY = "document_sm3"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def fingerprint(method: str, path: str, content: Any) -> str:
    """The SM3 of a request as far as idempotency cares: method, path and the parsed body in a
    canonical JSON form (key order and whitespace do not make a request different)."""
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "body": content},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return sm3(canonical.encode()).hex()


def check_key(value: str) -> str:
    if not value or len(value) > MAX_KEY_CHARS or any(not 0x20 < ord(c) < 0x7F for c in value):
        raise ApiError(
            "invalid_idempotency_key",
            f"an Idempotency-Key is 1 to {MAX_KEY_CHARS} printable ASCII "
            "characters without spaces (a UUID is a good choice)",
        )
    return value


class IdempotencyStore:
    """The stored answers of one database; one instance per app, shared by its requests."""

    def __init__(
        self,
        db: Database,
        *,
        ttl: timedelta,
        wait: timedelta,
        documents: DocumentStore | None = None,
        purge_interval: float = PURGE_INTERVAL_SECONDS,
    ):
        self.db, self.ttl, self.wait, self.documents = db, ttl, wait, documents
        self.purge_interval = purge_interval
        self._purge_lock = threading.Lock()
        self._last_purge: float | None = None

    def run(
        self, api_key_id: str, key: str, fingerprint_hex: str, act: Callable[[], StoredResponse]
    ) -> tuple[StoredResponse, bool]:
        """The answer to the request and whether it is a replay: ``act`` runs at most once per key."""
        stored = self.claim(api_key_id, key, fingerprint_hex)
        if stored is not None:
            return stored, True
        try:
            answer = act()
        except BaseException:
            self.release(api_key_id, key)
            raise
        if 200 <= answer.status < 300:
            self.complete(api_key_id, key, answer)
        else:
            self.release(api_key_id, key)
        return answer, False

    def claim(self, api_key_id: str, key: str, fingerprint_hex: str) -> StoredResponse | None:
        """None if this request now holds the key (it must run, then complete or release);
        otherwise the stored answer of the first request with it."""
        key = check_key(key)
        self.purge_expired()
        deadline = time.monotonic() + self.wait.total_seconds()
        delay = POLL_SECONDS
        while True:
            if self._insert(api_key_id, key, fingerprint_hex):
                return None
            row = self._row(api_key_id, key)
            while row is not None:
                if row.created_at < datetime.now(UTC) - self.ttl:
                    self._discard([row])  # past its TTL: never replayed; the key is free again
                    break
                if row.fingerprint != fingerprint_hex:
                    raise ApiError(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used before with a different "
                        "request; use a new key for a new request",
                        {"first_used": row.created_at.isoformat()},
                    )
                if row.state == "done":
                    return StoredResponse(row.status_code or 200, row.response or {})
                if time.monotonic() >= deadline:
                    raise ApiError(
                        "request_in_progress",
                        "a request with this Idempotency-Key is still being "
                        "processed; retry later with the same key",
                        {"since": row.created_at.isoformat(), "retry_after": RETRY_AFTER_SECONDS},
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                    )
                time.sleep(delay)
                delay = min(delay * 2, MAX_POLL_SECONDS)
                row = self._row(api_key_id, key)
            # released (the first request failed) or expired just now: try to claim it again

    def complete(self, api_key_id: str, key: str, answer: StoredResponse) -> None:
        with self.db.transaction() as s:
            s.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.api_key_id == api_key_id,
                    IdempotencyRecord.idempotency_key == key,
                    IdempotencyRecord.state == "pending",
                )
                .values(
                    state="done",
                    status_code=answer.status,
                    response=answer.body,
                    completed_at=datetime.now(UTC),
                )
            )

    def release(self, api_key_id: str, key: str) -> None:
        with self.db.transaction() as s:
            s.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.api_key_id == api_key_id,
                    IdempotencyRecord.idempotency_key == key,
                    IdempotencyRecord.state == "pending",
                )
            )

    def purge_expired(self, *, force: bool = False) -> int:
        """Delete expired rows (and their documents), at most once per ``purge_interval``
        unless ``force``; the number of rows deleted."""
        with self._purge_lock:
            now = time.monotonic()
            if not force and self._last_purge is not None and now - self._last_purge < self.purge_interval:
                return 0
            self._last_purge = now
        cutoff = datetime.now(UTC) - self.ttl
        with self.db.transaction() as s:
            rows = list(
                s.scalars(
                    select(IdempotencyRecord)
                    .where(IdempotencyRecord.created_at < cutoff)
                    .order_by(IdempotencyRecord.id)
                    .limit(PURGE_BATCH)
                )
            )
        return self._discard(rows)

    def _discard(self, rows: list[IdempotencyRecord]) -> int:
        """Delete these rows (if still there) and the documents their answers name."""
        if not rows:
            return 0
        with self.db.transaction() as s:
            s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_([r.id for r in rows])))
        if self.documents is not None:
            for row in rows:
                digest = (row.response or {}).get(DOCUMENT_KEY)
                if digest:
                    # Every sealing makes new bytes (time, random signature), so no other row
                    # names this file; the store itself never deletes, hence the unlink here.
                    with contextlib.suppress(OSError, ValueError):
                        self.documents.path(digest).unlink()
        return len(rows)

    def _insert(self, api_key_id: str, key: str, fingerprint_hex: str) -> bool:
        try:
            with self.db.transaction() as s:
                s.add(
                    IdempotencyRecord(
                        api_key_id=api_key_id,
                        idempotency_key=key,
                        fingerprint=fingerprint_hex,
                        state="pending",
                        created_at=datetime.now(UTC),
                    )
                )
            return True
        except IntegrityError:
            return False

    def _row(self, api_key_id: str, key: str) -> IdempotencyRecord | None:
        with self.db.transaction() as s:
            return s.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.idempotency_key == key
                )
            ).first()
