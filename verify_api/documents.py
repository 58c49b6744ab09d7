"""Judging an uploaded document within bounds fit for anonymous input from the internet.

An OFD is a zip: a 14 MB upload could inflate to a gigabyte and hold a worker for seconds,
and the default :class:`ofd.package.Limits` are sized for the trusted documents the internal
side handles (256 MiB entries, 1 GiB in all). The public service opens uploads with
:func:`public_limits` instead — inflated total at most four times the upload limit, entries of
at most 32 MiB, at most 20:1 overall above 8 MiB — so a decompression bomb is refused from
its declared sizes (and, since declared sizes are never trusted, by the capped inflation)
before it costs memory.

PDF verification (:func:`pdf.verification.examine_pdf`) takes no limits parameter: its bounds
are the module constants of :mod:`pdf.revisions` (256 revisions, 8 million xref entries,
64 MiB per xref stream) and of the object parser (nesting depth); the upload size limit and
:class:`ValidationSlots` bound the rest.

:class:`ValidationSlots` caps how many validations run at once in a worker (about one per
CPU): past that, an upload is answered 503 with Retry-After at once rather than queued, so a
burst of heavy documents cannot pile up memory or starve the QR lookups.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from ofd.package import Limits, MiB, Package
from trust.report import DocumentReport
from trust.validation import TrustContext, UnsupportedDocument, validate_document, validate_ofd

#: Largest single entry of an uploaded OFD, inflated.
MAX_ENTRY = 32 * MiB
#: Everything an uploaded OFD inflates to, as a multiple of the upload limit.
TOTAL_FACTOR = 4
#: Inflated bytes / package bytes, over the whole package, once past :data:`TOTAL_RATIO_FLOOR`.
TOTAL_RATIO = 20
TOTAL_RATIO_FLOOR = 8 * MiB
#: Entries in one uploaded package (a licence has a few dozen).
MAX_ENTRIES = 2_000


def public_limits(max_upload: int) -> Limits:
    """The package limits for an upload of at most ``max_upload`` bytes."""
    return Limits(max_entries=MAX_ENTRIES, max_entry_size=MAX_ENTRY, max_total_size=TOTAL_FACTOR * max_upload,
                  max_package_size=max_upload, max_total_ratio=TOTAL_RATIO,
                  total_ratio_floor=min(TOTAL_RATIO_FLOOR, TOTAL_FACTOR * max_upload))


def validate_upload(data: bytes, trust: TrustContext, at: datetime, limits: Limits) -> DocumentReport:
    """The validation report of an uploaded OFD or PDF; an OFD is opened under ``limits``
    (PackageError, an OfdError, when it passes them). Raises what validate_document raises."""
    if data[:4] == b"PK\x03\x04":
        package = Package.open(data, limits)
        return validate_ofd(package, trust, at)  # examine_ofd takes an opened package as it is
    if data[:5] == b"%PDF-":
        return validate_document(data, trust, at)
    raise UnsupportedDocument("neither an OFD package (ZIP) nor a PDF (%PDF-) by its first bytes")


class ValidationsBusy(Exception):
    """Every validation slot of this worker is taken: try again in a moment."""


class ValidationSlots:
    """At most ``size`` validations at once; :meth:`take` refuses at once when all are taken."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("at least one validation slot is needed")
        self.size = size
        self._semaphore = threading.BoundedSemaphore(size)

    @contextmanager
    def take(self) -> Iterator[None]:
        if not self._semaphore.acquire(blocking=False):
            raise ValidationsBusy(f"all {self.size} validation slots are busy")
        try:
            yield
        finally:
            self._semaphore.release()
