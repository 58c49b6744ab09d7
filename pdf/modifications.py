"""What an incremental update changed, and whether a signature may tolerate it.

An update after a signature is not covered by it, yet readers show its effect. Like
pyHanko's difference analysis, every object the update's cross-reference section (re)defines
or frees must be explained by a rule, or the update is refused and the object named
(``object 12 0 (page 1 /Contents) changed``). Objects are compared between pikepdf's view of
the file as of the two revisions (:func:`pdf.revisions.open_revision`).

Permitted — what signing, form filling and long-term validation legitimately write:

* a new signature field carrying a signature (/V), its widget(s), its signature dictionary
  and appearance streams; an empty signature field that was there at signing time, signed;
* the AcroForm /Fields array growing by such fields, /SigFlags; the catalog gaining or
  changing /AcroForm or /DSS (not /Perms: certification belongs to the first signature);
* a page's /Annots growing by those widgets only;
* DSS dictionaries and the streams only they reach (validation data);
* /V (with /AP, /AS) of existing non-signature fields, when DocMDP allows form filling
  (P=2 or 3; also without a certification signature, as an approval signature allows);
* objects rewritten byte-identically, and objects nothing references (xref streams,
  object streams, leftovers): no reader shows them.

Refused: everything else — page content, resources, fonts, other annotations, catalog
entries, pages added or removed, freed objects or numbers reused with a new generation, a
new signature field without a signature of its own (its appearance could overlay signed
content: the "sneaky signature" attack — or it could borrow an earlier field's valid
signature), an annotation that already existed put on a page, a reference that led nowhere
at signing time and now resolves (new content without touching the referring object),
structural problems of the update (:attr:`Revision.problems`, new qpdf warnings). With
DocMDP P=1 nothing at all is permitted (not even DSS; PAdES would allow it — a choice to
revisit). An object that was reachable in the signed revision is only ever explained as that
object (the page stays a page even if a new widget points at it, the page's content stream
stays the page's even if /DSS lists it), so a rule for new objects cannot launder a change to
an old one. pyHanko permits the unsigned signature field; we do not.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import pikepdf

from .revisions import FREE, Revision, entry_as_of, open_revision

ObjGen = tuple[int, int]
TRAILER: ObjGen = (0, 0)
FIELD_VALUE_KEYS = frozenset({"/V", "/AP", "/AS"})
_MAX_DEPTH = 64
_BUFFER = re.compile(r"stream <_io\.BytesIO object at 0x[0-9a-f]+>")


@dataclass(frozen=True)
class Change:
    """One object an update wrote or freed, and the verdict on it."""

    number: int
    generation: int
    role: str  # where the object sits, e.g. "page 1 /Contents"; "" if nothing reaches it
    action: str  # "changed", "added", "freed", "rewritten unchanged", "unreferenced"
    permitted: bool
    reason: str = ""

    def describe(self) -> str:
        target = (
            "the trailer"
            if (self.number, self.generation) == TRAILER
            else f"object {self.number} {self.generation}"
        )
        role = f" ({self.role})" if self.role else ""
        return f"{target}{role} {self.action}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True)
class RevisionDiff:
    """Revision ``revision`` compared with the one before it."""

    revision: int
    changes: tuple[Change, ...]
    problems: tuple[str, ...] = ()

    @property
    def permitted(self) -> bool:
        return not self.problems and all(c.permitted for c in self.changes)

    def refused(self) -> tuple[str, ...]:
        return self.problems + tuple(c.describe() for c in self.changes if not c.permitted)

    def summary(self) -> str:
        """What a permitted update did, in a few words."""
        reasons = dict.fromkeys(c.reason for c in self.changes if c.permitted and c.reason)
        return "; ".join(reasons) or "nothing a reader shows"


# ---- one revision as pikepdf sees it ----------------------------------------------------------
def _children(value, path: str, depth: int = 0) -> Iterator[tuple[str, pikepdf.Object]]:
    """(path, indirect object) for each reference inside a direct value."""
    if not isinstance(value, pikepdf.Object) or depth > _MAX_DEPTH:
        return
    if isinstance(value, pikepdf.Stream):
        items = value.stream_dict.items()
    elif isinstance(value, pikepdf.Dictionary):
        items = value.items()
    elif isinstance(value, pikepdf.Array):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return
    for key, child in items:
        if isinstance(child, pikepdf.Object) and child.is_indirect:
            yield f"{path} {key}".strip(), child
        else:
            yield from _children(child, f"{path} {key}".strip(), depth + 1)


@dataclass
class _Field:
    name: str
    signature: bool
    widgets: list[ObjGen] = field(default_factory=list)


class _View:
    """The document as of one revision: every object reachable from the trailer and its role."""

    def __init__(self, data: bytes, revision: Revision):
        self.revision = revision
        self.problem: str | None = None
        self.roles: dict[ObjGen, str] = {}
        self.referrers: dict[ObjGen, set[ObjGen]] = {}
        self.pages: list[ObjGen] = []
        self.fields: dict[ObjGen, _Field] = {}
        self.widget_field: dict[ObjGen, ObjGen] = {}
        try:
            self.pdf = open_revision(data, revision)
            self.warnings = frozenset(_BUFFER.sub("the file", w) for w in self.pdf.get_warnings())
            self._walk()
        except Exception as exc:  # see History.diff: unreadable is a problem, not a crash
            self.pdf, self.warnings = None, frozenset()
            self.problem = f"revision {revision.number} cannot be read: {exc}"

    def get(self, objgen: ObjGen):
        return self.pdf.get_object(objgen) if self.pdf is not None else None

    def _walk(self) -> None:
        pdf = self.pdf
        root = pdf.trailer.get("/Root")
        seeds: dict[ObjGen, str] = {}
        if isinstance(root, pikepdf.Dictionary) and root.is_indirect:
            seeds[root.objgen] = "catalogue"
            tree = root.get("/Pages")
            if isinstance(tree, pikepdf.Object) and tree.is_indirect:
                seeds[tree.objgen] = "page tree"
            acroform = root.get("/AcroForm")
            if isinstance(acroform, pikepdf.Dictionary):
                if acroform.is_indirect:
                    seeds[acroform.objgen] = "AcroForm"
                self._read_fields(acroform.get("/Fields"), "", None, 0)
        info = pdf.trailer.get("/Info")
        if isinstance(info, pikepdf.Object) and info.is_indirect:
            seeds[info.objgen] = "document information"
        for i, page in enumerate(pdf.pages):
            self.pages.append(page.obj.objgen)
            seeds[page.obj.objgen] = f"page {i + 1}"
        for objgen, f in self.fields.items():
            seeds[objgen] = f"{'signature ' if f.signature else ''}field '{f.name}'"
        # validation data last: an object the document reaches too is the document's, not DSS's
        catalogue = root.objgen if isinstance(root, pikepdf.Dictionary) and root.is_indirect else None

        def not_dss(parent: ObjGen, path: str) -> bool:
            return not (parent == catalogue and path.startswith("/DSS"))

        self._bfs([(TRAILER, pdf.trailer)], seeds, not_dss)
        if catalogue is not None:
            self._bfs(
                [(catalogue, root)],
                seeds,
                lambda parent, path: parent != catalogue or path.startswith("/DSS"),
            )

    def _bfs(self, starts, seeds: dict[ObjGen, str], keep) -> None:
        queue: deque[tuple[ObjGen, pikepdf.Object]] = deque()

        def visit(parent: ObjGen, path: str, child: pikepdf.Object) -> None:
            objgen = child.objgen
            self.referrers.setdefault(objgen, set()).add(parent)
            if objgen not in self.roles:
                base = "trailer" if parent == TRAILER else self.roles.get(parent, "")
                self.roles[objgen] = seeds.get(objgen) or f"{base} {path}".strip()
                queue.append((objgen, child))

        for parent, value in starts:
            for path, child in _children(value, ""):
                if keep(parent, path):
                    visit(parent, path, child)
        while queue:
            objgen, obj = queue.popleft()
            for path, child in _children(obj, ""):
                if keep(objgen, path):
                    visit(objgen, path, child)

    def _read_fields(self, kids, parent_name: str, inherited_ft, depth: int) -> None:
        if not isinstance(kids, pikepdf.Array) or depth > _MAX_DEPTH:
            return
        for kid in kids:
            if not isinstance(kid, pikepdf.Dictionary) or not kid.is_indirect or kid.objgen in self.fields:
                continue
            ft = kid.get("/FT", inherited_ft)
            title = kid.get("/T")
            if title is None and "/Subtype" in kid:  # a widget of the parent field, not a field
                continue
            name = (
                f"{parent_name}.{title}"
                if parent_name and title is not None
                else str(title if title is not None else parent_name)
            )
            f = _Field(name, ft == "/Sig")
            self.fields[kid.objgen] = f
            widgets = [k for k in kid.get("/Kids", []) if isinstance(k, pikepdf.Dictionary) and "/T" not in k]
            f.widgets = [w.objgen for w in widgets if w.is_indirect]
            if kid.get("/Subtype") == "/Widget":
                f.widgets.append(kid.objgen)
            for w in f.widgets:
                self.widget_field[w] = kid.objgen
            self._read_fields(kid.get("/Kids"), name, ft, depth + 1)


# ---- comparing two views ----------------------------------------------------------------------
def _fingerprint(value) -> tuple:
    if isinstance(value, pikepdf.Object):
        if value.is_indirect:
            return ("ref", value.objgen)
        return ("direct", value.unparse())
    return ("scalar", type(value).__name__, repr(value))


def _same_object(a, b) -> bool:
    if isinstance(a, pikepdf.Stream) or isinstance(b, pikepdf.Stream):
        return (
            isinstance(a, pikepdf.Stream)
            and isinstance(b, pikepdf.Stream)
            and a.stream_dict.unparse() == b.stream_dict.unparse()
            and a.read_raw_bytes() == b.read_raw_bytes()
        )
    return a.unparse(resolved=True) == b.unparse(resolved=True)


def _changed_keys(a, b) -> set[str]:
    a = a if isinstance(a, pikepdf.Dictionary) else pikepdf.Dictionary()
    b = b if isinstance(b, pikepdf.Dictionary) else pikepdf.Dictionary()
    return {k for k in set(a.keys()) | set(b.keys()) if _fingerprint(a.get(k)) != _fingerprint(b.get(k))}


def _items(array) -> list:
    return list(array) if isinstance(array, pikepdf.Array) else []


IMPLICIT = "implicit"  # an object that reads differently though the update's xref does not name it


class _Judge:
    """Explains the objects one update writes; whatever stays unexplained is refused."""

    def __init__(self, old: _View, new: _View, revisions: tuple[Revision, ...], docmdp: int | None):
        self.old, self.new, self.revisions = old, new, revisions
        self.update = new.revision
        self.level = docmdp if docmdp is not None else 2
        self.written: dict[ObjGen, str] = {
            (n, e.generation): e.kind for n, e in self.update.entries.items() if e.kind != FREE
        }
        # Defence in depth: what qpdf reads is what a viewer shows. Any object the signed revision
        # reached that now reads differently was changed, whether or not this update's xref names
        # it (an old object stream rewritten, a shadowed definition): it must be explained too.
        if old.pdf is not None and new.pdf is not None:
            for objgen in old.roles:
                if objgen not in self.written and not _same_object(old.get(objgen), new.get(objgen)):
                    self.written[objgen] = IMPLICIT
        self.explained: dict[ObjGen, str] = {}
        self.refusals: list[Change] = []
        self._refused: set[ObjGen] = set()

    # -- bookkeeping
    def role(self, objgen: ObjGen) -> str:
        return self.old.roles.get(objgen) or self.new.roles.get(objgen, "")

    def old_reachable(self, objgen: ObjGen) -> bool:
        return objgen in self.old.roles

    def explain(self, objgen: ObjGen, reason: str) -> None:
        if objgen in self.written and objgen not in self.explained:
            self.explained[objgen] = reason

    def refuse(self, objgen: ObjGen, action: str, reason: str) -> None:
        if objgen in self._refused:
            return  # one refusal per object is enough
        self._refused.add(objgen)
        self.refusals.append(Change(*objgen, self.role(objgen), action, False, reason))
        self.explained[objgen] = ""  # judged: not reported again as permitted

    def explain_subtree(self, value, reason: str, owner: str | None = None) -> None:
        """Explain the new objects under ``value`` (and, with ``owner``, old ones only it reached)."""

        def owned(role: str) -> bool:
            return owner is not None and (role == owner or role.startswith(owner + " "))

        queue = deque([(value, True)])
        seen: set[ObjGen] = set()
        while queue:
            obj, top = queue.popleft()
            if isinstance(obj, pikepdf.Object) and obj.is_indirect:
                objgen = obj.objgen
                if objgen in seen:
                    continue
                seen.add(objgen)
                if self.old_reachable(objgen):
                    if not owned(self.old.roles[objgen]):
                        continue  # an old object keeps its own role; it is judged as itself
                    # Shared with anything outside the owner (a page drawing the field's
                    # appearance XObject): changing it changes more than the field.
                    if not top and not all(
                        self._within(owner, self.old.roles.get(r, ""))
                        for r in self.old.referrers.get(objgen, ())
                    ):
                        continue
                self.explain(objgen, reason)
            queue.extend((child, False) for _, child in _children(obj, ""))

    @staticmethod
    def _within(owner: str, role: str) -> bool:
        """``role`` is inside ``owner``'s subtree, or on the path to it (the catalogue holding a
        direct /DSS): a referrer elsewhere (a page) means the object is shared."""
        return role == owner or role.startswith(owner + " ") or owner.startswith(role + " ") or role == ""

    # -- the rules
    def run(self) -> RevisionDiff:
        problems = list(self.update.problems)
        unreadable = [view.problem for view in (self.old, self.new) if view.problem]
        if unreadable:
            return RevisionDiff(self.update.number, (), tuple(problems + unreadable))
        fresh = sorted(self.new.warnings - self.old.warnings)
        problems += [f"qpdf, reading revision {self.update.number}: {w}" for w in fresh]
        if self.level == 1:
            for objgen in sorted(self.written):
                if self.old_reachable(objgen) or objgen in self.new.roles:
                    self.refuse(
                        objgen,
                        "changed" if self.old_reachable(objgen) else "added",
                        "the certification signature (DocMDP P=1) permits no change",
                    )
        self._freed()
        self._trailer()
        self._catalogue()
        self._dss()
        self._pages()
        self._fields()
        self._identical_and_orphans()
        self._dangling()
        changes = list(self.refusals)
        for objgen in sorted(self.written):
            if objgen in self.explained:
                if self.explained[objgen]:
                    changes.append(
                        Change(*objgen, self.role(objgen), self._action(objgen), True, self.explained[objgen])
                    )
                continue
            why = (
                "changed without this update writing it (rewritten inside an object stream, or shadowed)"
                if self.written[objgen] == IMPLICIT
                else "no rule permits this change after a signature"
            )
            changes.append(Change(*objgen, self.role(objgen), self._action(objgen), False, why))
        return RevisionDiff(self.update.number, tuple(changes), tuple(problems))

    def _action(self, objgen: ObjGen) -> str:
        return "changed" if self.old_reachable(objgen) else "added"

    def _freed(self) -> None:
        for number in sorted(self.update.freed):
            before = entry_as_of(self.revisions, number, self.update.number - 1)
            if before is not None:
                self.refuse(
                    (number, before[1].generation),
                    "freed",
                    "objects that existed when signed may not be deleted",
                )
        for number, generation in self.written:
            before = entry_as_of(self.revisions, number, self.update.number - 1)
            if (
                before is not None
                and before[1].generation != generation
                and self.old_reachable((number, before[1].generation))
            ):
                self.refuse(
                    (number, before[1].generation),
                    "replaced",
                    f"the update reuses its number with generation {generation}",
                )

    def _trailer(self) -> None:
        old, new = self.old.pdf.trailer, self.new.pdf.trailer
        bad = [
            k for k in ("/Root", "/Info", "/Encrypt") if _fingerprint(old.get(k)) != _fingerprint(new.get(k))
        ]
        if bad:
            self.refusals.append(Change(*TRAILER, "", "changed", False, f"{', '.join(bad)} replaced"))

    def _catalogue(self) -> None:
        old_root, new_root = self.old.pdf.trailer.get("/Root"), self.new.pdf.trailer.get("/Root")
        if not isinstance(new_root, pikepdf.Dictionary) or not new_root.is_indirect:
            return
        objgen = new_root.objgen
        if objgen not in self.written:
            return
        bad = _changed_keys(old_root, new_root) - {"/AcroForm", "/DSS"}
        if bad:
            self.refuse(objgen, "changed", f"{', '.join(sorted(bad))} changed")
        else:
            self.explain(objgen, "catalogue: /AcroForm or /DSS updated")

    def _dss(self) -> None:
        root = self.new.pdf.trailer.get("/Root")
        dss = root.get("/DSS") if isinstance(root, pikepdf.Dictionary) else None
        if dss is not None:
            self.explain_subtree(dss, "validation data (DSS)", owner="catalogue /DSS")

    def _pages(self) -> None:
        old_pages = set(self.old.pages)
        for i, objgen in enumerate(self.new.pages):
            page = self.new.get(objgen)
            annots = page.get("/Annots")
            array = annots.objgen if isinstance(annots, pikepdf.Object) and annots.is_indirect else None
            if objgen not in self.written and array not in self.written:
                continue
            if objgen not in old_pages:
                continue  # a page that was not there: its page tree node is refused
            old_page = self.old.get(objgen)
            bad = _changed_keys(old_page, page) - {"/Annots"}
            if bad:
                self.refuse(objgen, "changed", f"{', '.join(sorted(bad))} changed")
                continue
            old_annots = [_fingerprint(a) for a in _items(old_page.get("/Annots"))]
            new_annots = _items(annots)
            new_prints = [_fingerprint(a) for a in new_annots]
            lost = [p for p in old_annots if p not in new_prints]
            if lost:
                self.refuse(objgen, "changed", f"/Annots lost {len(lost)} annotation(s)")
                continue
            for annot in new_annots:
                if _fingerprint(annot) in old_annots:
                    continue
                why = self._new_widget(annot)
                if why:
                    self.refuse(objgen, "changed", f"/Annots gained an annotation that {why}")
                    break
            else:
                self.explain(objgen, f"page {i + 1}: signature widget added to /Annots")
                if array is not None:
                    self.explain(array, f"page {i + 1}: signature widget added to /Annots")

    def _new_widget(self, annot) -> str | None:
        """Why ``annot``, new in a page's /Annots, is not a signature field's widget (None if it is)."""
        if not isinstance(annot, pikepdf.Dictionary) or not annot.is_indirect:
            return "is not an indirect annotation dictionary"
        if self.old_reachable(annot.objgen):
            return f"was already there as {self.old.roles[annot.objgen]}"
        if annot.get("/Subtype") != "/Widget":
            return f"is a {annot.get('/Subtype')} annotation, not a signature widget"
        owner = self.new.widget_field.get(annot.objgen)
        if owner is None or not self.new.fields[owner].signature:
            return "is a widget of no signature field in /AcroForm"
        return None

    def _fields(self) -> None:
        new_root = self.new.pdf.trailer.get("/Root")
        old_root = self.old.pdf.trailer.get("/Root")
        if not isinstance(new_root, pikepdf.Dictionary):
            return
        new_form = new_root.get("/AcroForm")
        old_form = old_root.get("/AcroForm") if isinstance(old_root, pikepdf.Dictionary) else None
        form_written = (
            isinstance(new_form, pikepdf.Object) and new_form.is_indirect and new_form.objgen in self.written
        )
        if form_written or _fingerprint(old_form) != _fingerprint(new_form):
            self._acroform(old_form, new_form)
        for objgen, f in self.new.fields.items():
            if objgen in self.written or any(w in self.written for w in f.widgets):
                self._field(objgen, f)

    def _acroform(self, old_form, new_form) -> None:
        objgen = new_form.objgen if isinstance(new_form, pikepdf.Object) and new_form.is_indirect else None
        target = objgen or (self.new.pdf.trailer.Root.objgen)
        if not isinstance(new_form, pikepdf.Dictionary):
            self.refuse(target, "changed", "/AcroForm removed")
            return
        bad = _changed_keys(old_form, new_form) - {"/Fields", "/SigFlags"}
        old_list = old_form.get("/Fields") if isinstance(old_form, pikepdf.Dictionary) else None
        old_fields = [_fingerprint(f) for f in _items(old_list)]
        new_fields = _items(new_form.get("/Fields"))
        lost = [p for p in old_fields if p not in {_fingerprint(f) for f in new_fields}]
        if bad or lost:
            why = ", ".join(sorted(bad)) + " changed" if bad else f"/Fields lost {len(lost)} field(s)"
            self.refuse(target, "changed", f"AcroForm: {why}")
            return
        for f in new_fields:
            if _fingerprint(f) in old_fields:
                continue
            if not (
                isinstance(f, pikepdf.Object)
                and f.is_indirect
                and f.objgen in self.new.fields
                and self.new.fields[f.objgen].signature
            ):
                self.refuse(
                    target, "changed", "AcroForm: /Fields gained a field that is not a signature field"
                )
                return
        fields = new_form.get("/Fields")
        if objgen is not None:
            self.explain(objgen, "AcroForm: signature field(s) added")
        if isinstance(fields, pikepdf.Object) and fields.is_indirect:
            self.explain(fields.objgen, "AcroForm: signature field(s) added")

    def _field(self, objgen: ObjGen, f: _Field) -> None:
        new = self.new.get(objgen)
        if not self.old_reachable(objgen):
            if not f.signature:
                return  # a new non-signature field: the AcroForm rule refuses it
            value = new.get("/V")
            if not isinstance(value, pikepdf.Dictionary):
                self.refuse(
                    objgen,
                    "added",
                    "a signature field without a signature (its appearance could overlay signed content)",
                )
                return
            if not value.is_indirect or self.old_reachable(value.objgen):
                reused = f" (it reuses {self.role(value.objgen)})" if value.is_indirect else ""
                self.refuse(
                    objgen,
                    "added",
                    f"a signature field whose value is not a new signature dictionary{reused}",
                )
                return
            self.explain_subtree(new, f"signature field '{f.name}' added")
            return
        old = self.old.get(objgen)
        changed = _changed_keys(old, new)
        label = f"{'signature ' if f.signature else ''}field '{f.name}'"
        if f.signature:
            if "/V" in old or not isinstance(new.get("/V"), pikepdf.Dictionary) or changed - FIELD_VALUE_KEYS:
                self.refuse(
                    objgen,
                    "changed",
                    f"{label}: {', '.join(sorted(changed)) or 'widget'} changed "
                    "(only an empty signature field may be signed)",
                )
                return
            self._field_widgets(objgen, f, f"{label} signed")
            return
        if self.level < 2:
            self.refuse(objgen, "changed", f"{label}: form filling is not permitted (DocMDP P=1)")
            return
        if changed - FIELD_VALUE_KEYS:
            extra = ", ".join(sorted(changed - FIELD_VALUE_KEYS))
            self.refuse(objgen, "changed", f"{label}: {extra} changed")
            return
        self._field_widgets(objgen, f, f"{label} filled in")

    def _field_widgets(self, objgen: ObjGen, f: _Field, reason: str) -> None:
        self.explain(objgen, reason)
        owner = self.old.roles.get(objgen)
        for key in FIELD_VALUE_KEYS:
            value = self.new.get(objgen).get(key)
            if value is not None:
                self.explain_subtree(value, reason, owner=owner)
        for widget in f.widgets:
            if widget == objgen or widget not in self.written:
                continue
            old_w, new_w = self.old.get(widget), self.new.get(widget)
            bad = _changed_keys(old_w, new_w) - {"/AP", "/AS"} if self.old_reachable(widget) else set()
            if bad:
                self.refuse(
                    widget, "changed", f"widget of field '{f.name}': {', '.join(sorted(bad))} changed"
                )
                continue
            self.explain(widget, reason)
            if new_w.get("/AP") is not None:
                self.explain_subtree(new_w.get("/AP"), reason, owner=self.old.roles.get(widget))

    def _identical_and_orphans(self) -> None:
        for objgen in self.written:
            if objgen in self.explained:
                continue
            if objgen not in self.new.roles:
                self.explain(objgen, "")  # unreferenced: nothing shows it
                self.explained[objgen] = ""
            elif self.old_reachable(objgen) and _same_object(self.old.get(objgen), self.new.get(objgen)):
                self.explain(objgen, "rewritten unchanged")

    def _dangling(self) -> None:
        for objgen in self.written:
            if self.old_reachable(objgen) or objgen not in self.new.roles:
                continue
            still = [r for r in self.new.referrers.get(objgen, ()) if r not in self.written]
            if still:
                self.explained.pop(objgen, None)
                names = ", ".join(
                    f"{r[0]} {r[1]} ({self.role(r)})" if r != TRAILER else "the trailer"
                    for r in sorted(still)
                )
                self.refuse(
                    objgen,
                    "added",
                    f"referenced by object(s) {names} unchanged since signing: a "
                    "reference that led nowhere when signed now shows new content",
                )


class History:
    """The revisions of one file, opened on demand and compared pairwise (views are cached)."""

    def __init__(self, data: bytes, revisions: tuple[Revision, ...]):
        self.data, self.revisions = data, revisions
        self._views: dict[int, _View] = {}
        self._diffs: dict[tuple[int, int | None], RevisionDiff] = {}

    def view(self, number: int) -> _View:
        if number not in self._views:
            self._views[number] = _View(self.data, self.revisions[number - 1])
        return self._views[number]

    def diff(self, number: int, docmdp: int | None = None) -> RevisionDiff:
        """Revision ``number`` (≥ 2) against revision ``number - 1``, under DocMDP level ``docmdp``."""
        key = (number, docmdp)
        if key not in self._diffs:
            judge = _Judge(self.view(number - 1), self.view(number), self.revisions, docmdp)
            try:
                self._diffs[key] = judge.run()
            except Exception as exc:  # pikepdf raises TypeError, UnicodeError … on
                # malformed names and values; an update that cannot be compared is never permitted
                self._diffs[key] = RevisionDiff(
                    number,
                    (),
                    (
                        f"revision {number} cannot be compared with revision {number - 1}: "
                        f"{type(exc).__name__}: {exc}",
                    ),
                )
        return self._diffs[key]
