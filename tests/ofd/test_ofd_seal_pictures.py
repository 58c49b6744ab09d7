"""Seal pictures of type "ofd" (the tax bureaus' invoice seals carry an OFD package as their
picture): the seal room recognises them, the OFD reader opens them and reads what they say."""

from __future__ import annotations

import zipfile

import pytest

from ofd.reader import read_ofd
from seals.picture import SealPictureError, inspect_picture, picture_png
from seals.seal_signature import read_seal_signature
from support.paths import INTEROP

TAX_INVOICES = {
    "ofdrw_1_zhejiang_vat_einvoice_2020_sesv4.ofd": "浙江省税务局",
    "ofdrw_v4signed_chongqing_test_einvoice_sesv4.ofd": "监制",
    "easyofd_guizhou_vat_special_einvoice_2022_sesv4.ofd": "贵州省税务局",
}


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(TAX_INVOICES))
def test_ofd_seal_pictures_open_and_read(name):
    with zipfile.ZipFile(INTEROP / "signed-ofd" / name) as z:
        seal = read_seal_signature(z.read("Doc_0/Signs/Sign_0/SignedValue.dat")).seal
    picture = seal.picture
    assert picture.type == "ofd" and (picture.width_mm, picture.height_mm) == (30, 20)
    facts = inspect_picture(picture.type, picture.data)
    assert (facts.actual_type, facts.type_matches) == ("ofd", True)
    with pytest.raises(SealPictureError, match="ofd/"):
        picture_png(picture.type, picture.data)
    document = read_ofd(picture.data)
    text = "".join(document.text()).replace("\n", "")
    assert len(document.bodies[0].document.pages) == 1
    assert "监制" in text and TAX_INVOICES[name] in text
