"""Running the ``zhengyin`` command line in the test process, through the real entry point."""

from __future__ import annotations

import contextlib
import io
import os
import sys


def run_cli(home, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Exit code, stdout and stderr (whitespace folded: rich wraps at 80 columns) of one command.

    It goes through :func:`trust.cli.main` and its error guard, so what a user would see is
    what the test sees; a traceback in either stream fails the test.
    """
    from trust.cli import main

    argv = ["zhengyin", *args, "--home", str(home)]
    out, err = io.StringIO(), io.StringIO()
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    old_argv, sys.argv = sys.argv, argv
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert "Traceback" not in err.getvalue() + out.getvalue()
    return code, out.getvalue(), " ".join(err.getvalue().split())


def issue_example(home, type_name: str, out_dir) -> dict:
    """Issue the catalogue's example licence of the type named ``type_name`` (e.g. 营业执照) in
    ``home`` through the command line; its ``--json`` answer (identifier, qr, files)."""
    import json
    from pathlib import Path

    code, out, err = run_cli(home, "licence", "types", "--json")
    assert code == 0, err
    licence_type = next(t for t in json.loads(out) if t["name"] == type_name)
    data = Path(out_dir) / f"{licence_type['code']}.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps(licence_type["example"], ensure_ascii=False), encoding="utf-8")
    code, out, err = run_cli(home, "licence", "issue", "--type", licence_type["code"], "--data", str(data),
                             "--out", str(out_dir), "--json")
    assert code == 0, err + out
    return json.loads(out)
