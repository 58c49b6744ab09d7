"""Errors of the ofd room.

Two kinds, because the user acts differently on them: a :class:`PackageError` means the ZIP
container itself is hostile or broken (nothing inside it can be trusted), an
:class:`OfdFormatError` means a part of a sound container is not the OFD it claims to be.
Messages name the entry or part and the rule broken, e.g. ``"Doc_0/Document.xml: no
CommonData"``.
"""

from __future__ import annotations


class OfdError(Exception):
    """Base of every error the ofd room raises."""


class PackageError(OfdError):
    """The ZIP container is malformed or hostile (zip bomb, path trick, prepended data …)."""


class OfdFormatError(OfdError):
    """An XML part or the OFD structure is malformed; the message names the part."""
