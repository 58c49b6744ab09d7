"""``zhengyin sign IN.ofd|IN.pdf --seal ESID -o OUT``: seal an existing document (电子公文)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..domain import TrustDomain
from .output import EXIT_BAD_INPUT, console, emit, fail
from .params import HOME, JSON

MAX_DOCUMENT = 512 * 1024 * 1024


def register(app: typer.Typer) -> None:
    @app.command("sign")
    def sign(
        document: Annotated[Path, typer.Argument(help="the OFD or PDF document to seal")],
        seal: Annotated[str, typer.Option("--seal", help="esID of an active seal of this home")],
        out: Annotated[Path, typer.Option("-o", "--out", help="where to write the sealed document")],
        page: Annotated[int, typer.Option(help="page number, from 1", min=1)] = 1,
        x: Annotated[float | None, typer.Option(help="stamp box left edge, mm from the page's left")] = None,
        y: Annotated[float | None, typer.Option(help="stamp box top edge, mm from the page's top")] = None,
        kind: Annotated[
            str,
            typer.Option(
                "--type",
                help="seal (default): OFD SES seal signature / PDF signature showing the seal; "
                "sign: OFD GB/T 35275 SignedData / invisible PDF signature",
            ),
        ] = "seal",
        certify: Annotated[
            int | None,
            typer.Option(
                "--certify",
                min=1,
                max=3,
                help="PDF only: a certification (DocMDP) signature allowing no changes (1), form filling "
                "and signing (2), or also annotations (3); only as the document's first signature",
            ),
        ] = None,
        home: HOME = None,
        json_: JSON = False,
    ) -> None:
        """Add a signature with one of the home's seals; earlier signatures stay valid."""
        from ofd.sealing import Placement

        from ..signing import KINDS, seal_document

        if kind not in KINDS:
            raise typer.BadParameter(f"--type must be one of {', '.join(KINDS)}")
        if not document.is_file():
            raise fail(f"{document} is not a file", EXIT_BAD_INPUT)
        if document.stat().st_size > MAX_DOCUMENT:
            raise fail(f"{document} is larger than {MAX_DOCUMENT} bytes", EXIT_BAD_INPUT)
        if certify is not None and document.read_bytes()[:5] != b"%PDF-":
            raise fail("--certify applies to PDF documents only", EXIT_BAD_INPUT)
        if out.resolve() == document.resolve():
            raise fail("write the sealed document to a new file, not over its input", EXIT_BAD_INPUT)
        td = TrustDomain.open(home)
        try:
            sealed = seal_document(
                td,
                document.read_bytes(),
                seal,
                placement=Placement(page=page - 1, x=x, y=y),
                kind=kind,
                certify=certify,
            )
        finally:
            td.close()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(sealed)
        os.replace(tmp, out)
        emit(
            {"written_to": str(out), "seal": seal, "type": kind, "page": page, "bytes": len(sealed)},
            json_,
            lambda: console.print(f"sealed {document} with {seal} (page {page}) -> {out}"),
        )
