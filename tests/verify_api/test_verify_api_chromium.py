"""The issue's "done when", in a real browser: Debian's headless Chromium at phone size opens the
URL decoded (zxing-cpp) from a licence PDF rendered at 200 dpi, served by a real uvicorn
serve-verify; the verdict and the masked name are on the page, a revoked licence gets the red
banner, and a tampered file submitted through the upload form gets TOTAL_FAILED with the reason.
Screenshots are kept as PNG artefacts under the test's tmp directory."""

from __future__ import annotations

import html
import io
import json

import httpx
import pytest

from support.chromium import PHONE, Chromium, chromium_executable
from support.cli import run_cli
from support.live_server import serve_verify

pytestmark = [pytest.mark.slow, pytest.mark.interop]

GOOD = (0x13, 0x73, 0x33)  # verify_api.pages: .good / .bad banner colours
BAD = (0xC5, 0x22, 0x1F)


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = chromium_executable()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (sh .ci/debian-packages test)")
    return executable


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("chromium-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    code, out, err = run_cli(home, "licence", "types", "--json")
    assert code == 0, err
    types = {t["name"]: t for t in json.loads(out)}
    result = {"home": home, "example": types["营业执照"]["example"]}
    for which, name in (("valid", "营业执照"), ("revoked", "医师执业证书")):
        data = home / f"{which}.json"
        data.write_text(json.dumps(types[name]["example"], ensure_ascii=False), encoding="utf-8")
        code, out, err = run_cli(home, "licence", "issue", "--type", types[name]["code"], "--data", str(data),
                                 "--out", str(home / which), "--json")
        assert code == 0, err + out
        result[which] = json.loads(out)
    code, _, err = run_cli(home, "licence", "revoke", result["revoked"]["identifier"], "--reason", "测试吊销")
    assert code == 0, err
    code, _, err = run_cli(home, "publish")
    assert code == 0, err
    return result


@pytest.fixture(scope="module")
def server(issued):
    with serve_verify(issued["home"]) as base:
        yield base


def _qr_url(pdf_path) -> str:
    pypdfium2 = pytest.importorskip("pypdfium2")
    zxingcpp = pytest.importorskip("zxingcpp")
    document = pypdfium2.PdfDocument(pdf_path)
    try:
        image = document[0].render(scale=200 / 72).to_pil()
    finally:
        document.close()
    found = [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(found) == 1, found
    return found[0]


def _on_server(url: str, base: str) -> str:
    """The QR's URL pointed at the test server when its base (ZHENGYIN_PUBLIC_URL) is another."""
    head, payload = url.split("/V/", 1)
    return url if head.lower() == base.lower() else f"{base}/V/{payload}"


def _look(png: bytes, artefact) -> dict[str, int]:
    """The screenshot as a phone shows it: its size, how many colours, and banner pixels."""
    from PIL import Image

    artefact.write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    raw = image.tobytes()
    pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))

    def near(colour):
        return sum(1 for p in pixels if all(abs(a - b) <= 12 for a, b in zip(p, colour, strict=True)))

    return {"width": image.width, "height": image.height, "colours": len(set(pixels)),
            "good": near(GOOD), "bad": near(BAD)}


def _text(dom: str) -> str:
    return html.unescape(dom)


def test_valid_licence_from_its_printed_qr_code(chromium, issued, server, tmp_path):
    url = _qr_url(issued["valid"]["pdf"])
    assert url.upper() == issued["valid"]["qr"].upper()
    with Chromium(chromium) as browser:
        page = browser.open(_on_server(url, server))
    text = _text(page.dom)
    name, code = issued["example"]["名称"], issued["example"]["统一社会信用代码"]
    assert "证照真实有效" in text and 'class="banner good"' in text and "banner bad" not in text
    assert f"{name[0]}{'*' * (len(name) - 2)}{name[-1]}" in text and name not in text
    assert f"{code[:4]}{'*' * (len(code) - 8)}{code[-4:]}" in text and code not in text
    look = _look(page.png, tmp_path / "valid-licence.png")
    assert (look["width"], look["height"]) == PHONE
    assert look["colours"] > 50  # text was drawn, antialiased: not a blank page
    assert look["good"] > 2000 and look["bad"] == 0  # the green banner, across the phone's width


def test_revoked_licence_gets_the_red_banner(chromium, issued, server, tmp_path):
    url = _qr_url(issued["revoked"]["pdf"])
    with Chromium(chromium) as browser:
        page = browser.open(_on_server(url, server))
    text = _text(page.dom)
    assert 'class="banner bad"' in text and "banner good" not in text
    assert "证照真实，但当前不是有效状态" in text and "已吊销" in text
    look = _look(page.png, tmp_path / "revoked-licence.png")
    assert (look["width"], look["height"]) == PHONE and look["colours"] > 50
    assert look["bad"] > 2000 and look["good"] == 0


def test_tampered_document_through_the_upload_form(chromium, issued, server, tmp_path):
    data = open(issued["valid"]["pdf"], "rb").read()
    position = data.index(b"/MediaBox")
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(data[:position] + b"/MediaBoy" + data[position + 9:])
    with Chromium(chromium) as browser:
        page = browser.submit_file(f"{server}/upload", tampered)
    text = _text(page.dom)
    assert "TOTAL_FAILED" in text and 'class="banner bad"' in text
    # the reason shown is the engine's: the first failed check of the API's report on the same file
    report = httpx.post(f"{server}/api/v1/verify", files={"file": ("t.pdf", tampered.read_bytes())},
                        timeout=60).json()["report"]
    assert report["indication"] == "TOTAL_FAILED"
    failed = [c for s in report["signatures"] for c in s["checks"] if not c["passed"]]
    failed += [c for c in report["checks"] if not c["passed"]]
    assert failed and failed[0]["detail"].split(":")[0][:40] in text
    look = _look(page.png, tmp_path / "tampered-upload.png")
    assert (look["width"], look["height"]) == PHONE and look["colours"] > 50 and look["bad"] > 2000
