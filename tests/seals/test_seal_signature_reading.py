"""Reading SES_Signature values from real OFD files; TBS signature and dataHash as SOURCES.md records."""

from __future__ import annotations

import zipfile

import pytest
from asn1crypto import x509

from hsm.errors import InvalidSignature
from hsm.signature import decode_bit_string_signature
from hsm.sm2 import SM2PublicKey
from hsm.sm3 import sm3
from seals.errors import SealFormatError
from seals.seal_signature import read_seal_signature
from support.paths import INTEROP

OFD = INTEROP / "signed-ofd"

# (file, SignedValue.dat entry): (layout, TBS version, TBS signature verifies, dataHash == SM3(Signature.xml))
SEAL_SIGNATURES = {
    ("ofdrw_1_zhejiang_vat_einvoice_2020_sesv4.ofd", "Doc_0/Signs/Sign_0"): ("v4", 4, True, True),
    ("ofdrw_v4signed_chongqing_test_einvoice_sesv4.ofd", "Doc_0/Signs/Sign_0"): ("v4", 4, True, True),
    ("easyofd_guizhou_vat_special_einvoice_2022_sesv4.ofd", "Doc_0/Signs/Sign_0"): ("v4", 4, True, True),
    ("ofdrw_SignScaleError_zhejiang_einvoice_platform_sesv4.ofd", "Doc_0/Signs/Sign_0"):
        ("v4", 4, True, True),
    ("ofdrw_zsbk_yunnan_2sigs_sesv4_modified_after_signing.ofd", "Doc_0/Signs/Sign_1"): ("v4", 4, True, True),
    ("ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd", "Doc_0/Signs/Sign_1"): ("v4", 4, True, True),
    ("ofdrw_hist_kinggrid_auto_seal_sesv1.ofd", "Doc_0/Signs/Sign_0"): ("v1", 2, True, True),
    ("ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd", "Doc_0/Signs/Sign_1"): ("v4", 4, True, True),
    ("ofdrw_n_dms360_sesv1_does_not_verify.ofd", "Doc_0/Signs/Sign_0"): ("v1", 1, False, False),
    ("ofdrw_SESV4SignDoc_ofdrw_sesv4.ofd", "Doc_0/Signs/Sign_0"): ("v4", 4, True, True),
    ("ofdrw_h_ofdrw_testseal_2sigs_sesv4.ofd", "Doc_0/Signs/Sign_1"): ("v4", 4, True, True),
}

# Sign-type signatures (GB/T 35275 SignedData, bare SM2) are not seal signatures.
NOT_SEAL_SIGNATURES = [
    ("ofdrw_testImageNotFound_topsec_gbt35275_pkcs9_2sigs.ofd", "Doc_0/Signs/Sign_0"),
    ("ofdjs_ccb_bank_receipt_ofdrw_gbt35275_pkcs9.ofd", "Doc_0/Signs/Sign_0"),
    ("ofdrw_DigitalSign_ofdrw_bare_sm2_sign.ofd", "Doc_0/Signs/Sign_0"),
    ("ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd", "Doc_0/Signs/Sign_3"),
]


def _verifies(cert: bytes, bits, data: bytes) -> bool:
    key = SM2PublicKey.from_spki(x509.Certificate.load(cert).public_key)
    try:
        key.verify(decode_bit_string_signature(bits.payload, bits.unused_bits), data)
    except InvalidSignature:
        return False
    return True


@pytest.mark.interop
@pytest.mark.parametrize("name, folder", sorted(SEAL_SIGNATURES))
def test_real_seal_signatures(name, folder):
    layout, version, tbs_ok, hash_ok = SEAL_SIGNATURES[(name, folder)]
    with zipfile.ZipFile(OFD / name) as z:
        value = read_seal_signature(z.read(f"{folder}/SignedValue.dat"))
        signature_xml = z.read(f"{folder}/Signature.xml")
    assert (value.layout, value.version) == (layout, version)
    assert _verifies(value.signer_certificate, value.signature, value.signed_bytes) is tbs_ok
    assert (value.data_hash.payload == sm3(signature_xml)) is hash_ok
    assert value.time_info.tzinfo is not None
    assert value.seal.name


@pytest.mark.interop
def test_details_of_v1_and_extdatas():
    with zipfile.ZipFile(OFD / "ofdrw_hist_kinggrid_auto_seal_sesv1.ofd") as z:
        v1 = read_seal_signature(z.read("Doc_0/Signs/Sign_0/SignedValue.dat"))
    assert v1.time_info.isoformat() == "2021-10-14T03:34:04+00:00"
    assert v1.property_info == "/Doc_0/Signs/Sign_0/Signature.xml"
    with zipfile.ZipFile(OFD / "ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd") as z:
        v4 = read_seal_signature(z.read("Doc_0/Signs/Sign_1/SignedValue.dat"))
    assert len(v4.ext_datas) == 1 and v4.ext_datas[0][1] is True  # critical
    assert len(v4.signature.payload) == 64  # raw r||s, still verified above


@pytest.mark.interop
@pytest.mark.parametrize("name, folder", NOT_SEAL_SIGNATURES)
def test_sign_type_values_are_not_seal_signatures(name, folder):
    with zipfile.ZipFile(OFD / name) as z:
        data = z.read(f"{folder}/SignedValue.dat")
    with pytest.raises(SealFormatError):
        read_seal_signature(data)


@pytest.mark.parametrize("data", [b"", b"\x30\x00", b"\x30\x06\x02\x01\x04\x02\x01\x04", bytes(50)])
def test_garbage(data):
    with pytest.raises(SealFormatError):
        read_seal_signature(data)


@pytest.mark.interop
def test_trailing_data_is_refused():
    data = (INTEROP / "seals" / "ofdrw_SignedValueV4.dat").read_bytes()
    read_seal_signature(data)
    with pytest.raises(SealFormatError):
        read_seal_signature(data + b"\x00")
