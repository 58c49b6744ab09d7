"""ofd.reader and ofd.text: crafted OFDs for each rule, and every interop OFD with what it holds."""

from __future__ import annotations

import pytest

from ofd.errors import OfdFormatError, PackageError
from ofd.package import Package, write_package
from ofd.reader import read_ofd
from support.paths import INTEROP

NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'

OFD_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<ofd:OFD {NS} DocType="OFD" Version="1.1"><ofd:DocBody>
  <ofd:DocInfo><ofd:DocID>abc123</ofd:DocID><ofd:Title>营业执照</ofd:Title><ofd:Author>市场监管局</ofd:Author>
    <ofd:CreationDate>2024-05-06</ofd:CreationDate><ofd:ModDate>2024-05-07</ofd:ModDate>
    <ofd:Creator>zhengyin</ofd:Creator><ofd:CreatorVersion>0.1</ofd:CreatorVersion>
    <ofd:CustomDatas><ofd:CustomData Name="证照编号">0001</ofd:CustomData></ofd:CustomDatas></ofd:DocInfo>
  <ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>
  <ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>
</ofd:DocBody></ofd:OFD>"""

DOCUMENT_XML = f"""<ofd:Document {NS}><ofd:CommonData><ofd:MaxUnitID>40</ofd:MaxUnitID>
  <ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea>
  <ofd:PublicRes>PublicRes.xml</ofd:PublicRes><ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes>
  <ofd:TemplatePage ID="2" BaseLoc="Tpls/Tpl_0/Content.xml"/>
  <ofd:TemplatePage ID="3" BaseLoc="Tpls/Tpl_1/Content.xml" ZOrder="Foreground"/>
 </ofd:CommonData>
 <ofd:Pages><ofd:Page ID="10" BaseLoc="Pages/Page_0/Content.xml"/>
  <ofd:Page ID="20" BaseLoc="Pages/Page_1/Content.xml"/>
 </ofd:Pages></ofd:Document>"""

PUBLIC_RES = f"""<ofd:Res {NS} BaseLoc="Res"><ofd:Fonts>
  <ofd:Font ID="5" FontName="SimSun" FamilyName="宋体"><ofd:FontFile>simsun.ttf</ofd:FontFile></ofd:Font>
  <ofd:Font ID="6" FontName="KaiTi"/></ofd:Fonts></ofd:Res>"""

DOCUMENT_RES = f"""<ofd:Res {NS} BaseLoc="/Doc_0/Res"><ofd:MultiMedias>
  <ofd:MultiMedia ID="7" Type="Image"><ofd:MediaFile>seal.png</ofd:MediaFile></ofd:MultiMedia>
  </ofd:MultiMedias></ofd:Res>"""


def text_object(x: float, y: float, text: str, *, size: float = 4, width: float | None = None,
                extra: str = "") -> str:
    width = len(text) * size if width is None else width
    return (f'<ofd:TextObject ID="1" Boundary="{x} {y} {width} {size * 1.5}" Font="5" Size="{size}" {extra}>'
            f'<ofd:TextCode X="0" Y="{size}">{text}</ofd:TextCode></ofd:TextObject>')


def page(*objects: str, templates: str = "") -> str:
    layer = f'<ofd:Layer ID="9">{"".join(objects)}</ofd:Layer>'
    return f"<ofd:Page {NS}>{templates}<ofd:Content>{layer}</ofd:Content></ofd:Page>"


PAGE_0 = page(text_object(20, 40, "持证人"), text_object(60, 40, "张三"), text_object(20, 60, "有效期"),
              templates='<ofd:Template TemplateID="2"/><ofd:Template TemplateID="3" ZOrder="Foreground"/>')
PAGE_1 = page(*(text_object(20 + 4 * i, 40, ch, width=4) for i, ch in enumerate("湖南省长沙市")))


def entries(changes: dict[str, str | bytes | None] | None = None) -> dict[str, bytes]:
    """A small complete OFD; ``changes`` replace (or, given None, remove) its parts."""
    parts: dict[str, str | bytes] = {
        "OFD.xml": OFD_XML,
        "Doc_0/Document.xml": DOCUMENT_XML,
        "Doc_0/PublicRes.xml": PUBLIC_RES,
        "Doc_0/DocumentRes.xml": DOCUMENT_RES,
        "Doc_0/Res/simsun.ttf": b"\x00\x01\x00\x00",
        "Doc_0/Res/seal.png": b"\x89PNG",
        "Doc_0/Tpls/Tpl_0/Content.xml": page(text_object(20, 20, "中华人民共和国营业执照")),
        "Doc_0/Tpls/Tpl_1/Content.xml": page(text_object(20, 280, "仅供核验")),
        "Doc_0/Pages/Page_0/Content.xml": PAGE_0,
        "Doc_0/Pages/Page_1/Content.xml": PAGE_1,
        "Doc_0/Signs/Signatures.xml": f"<ofd:Signatures {NS}/>",
    }
    for name, value in (changes or {}).items():
        if value is None:
            parts.pop(name)
        else:
            parts[name] = value
    return {name: value.encode() if isinstance(value, str) else value for name, value in parts.items()}


def build(changes: dict[str, str | bytes | None] | None = None) -> bytes:
    return write_package(entries(changes))


def test_reads_a_complete_document():
    ofd = read_ofd(build())
    assert len(ofd.bodies) == 1
    body = ofd.bodies[0]
    assert body.doc_root == "Doc_0/Document.xml"
    assert body.signatures == "Doc_0/Signs/Signatures.xml"
    info = body.info
    assert (info.doc_id, info.title, info.author, info.creator, info.creator_version) == \
        ("abc123", "营业执照", "市场监管局", "zhengyin", "0.1")
    assert (info.creation_date, info.modification_date) == ("2024-05-06", "2024-05-07")
    assert dict(info.custom_data) == {"证照编号": "0001"}
    doc = body.document
    assert doc.physical_box == (0, 0, 210, 297)
    assert [(p.id, p.base_loc, p.path) for p in doc.pages] == [
        ("10", "Pages/Page_0/Content.xml", "Doc_0/Pages/Page_0/Content.xml"),
        ("20", "Pages/Page_1/Content.xml", "Doc_0/Pages/Page_1/Content.xml")]
    assert dict(doc.templates) == {"2": "Doc_0/Tpls/Tpl_0/Content.xml", "3": "Doc_0/Tpls/Tpl_1/Content.xml"}
    assert doc.fonts["5"].name == "SimSun" and doc.fonts["5"].family == "宋体"
    assert doc.fonts["5"].path == "Doc_0/Res/simsun.ttf"
    assert doc.fonts["6"].path is None and doc.fonts["6"].family is None
    assert dict(doc.media) == {"7": "Doc_0/Res/seal.png"}
    assert doc.max_unit_id == 40
    assert doc.missing == ()


def test_accepts_an_opened_package():
    package = Package.open(build())
    assert read_ofd(package).package is package


def test_page_text_includes_templates_in_drawing_order():
    ofd = read_ofd(build())
    assert ofd.page_text(0, 0).split("\n") == ["中华人民共和国营业执照", "持证人 张三", "有效期", "仅供核验"]


def test_characters_drawn_one_object_each_are_joined_into_a_line():
    assert read_ofd(build()).page_text(0, 1) == "湖南省长沙市"


def test_text_is_one_string_per_page_of_the_first_document():
    text = read_ofd(build()).text()
    assert len(text) == 2 and "张三" in text[0] and "长沙" in text[1]


def test_text_position_follows_the_ctm():
    # KingGrid style: Size in glyph units, scaled down by a CTM, Y in the same units
    objects = [text_object(20 + 10 * i, 40, ch, size=600, width=10,
                           extra='CTM="0.0176 0 0 0.0176 0 0"') for i, ch in enumerate("民事判决书")]
    ofd = read_ofd(build({"Doc_0/Pages/Page_1/Content.xml": page(*objects)}))
    assert ofd.page_text(0, 1) == "民事判决书"


def test_page_index_out_of_range():
    ofd = read_ofd(build())
    with pytest.raises(IndexError, match="page 2 out of range"):
        ofd.page_text(0, 2)
    with pytest.raises(IndexError, match="document 1 out of range"):
        ofd.page_text(1, 0)


@pytest.mark.parametrize("spelling", ["default namespace", "no namespace", "old namespace"])
def test_namespace_spellings(spelling):
    def respell(xml: str) -> str:
        if spelling == "default namespace":
            return xml.replace(NS, 'xmlns="http://www.ofdspec.org/2016"').replace("ofd:", "")
        if spelling == "no namespace":
            return xml.replace(" " + NS, "").replace("ofd:", "")
        return xml.replace("http://www.ofdspec.org/2016", "http://www.ofdspec.org")

    parts = {name: respell(data.decode()).encode() if name.endswith(".xml") else data
             for name, data in entries().items()}
    ofd = read_ofd(write_package(parts))
    assert len(ofd.bodies[0].document.pages) == 2
    assert ofd.bodies[0].info.title == "营业执照"
    assert "张三" in ofd.page_text(0, 0)


def test_bom_and_pretty_printing():
    pretty = OFD_XML.replace("><", ">\n\t<")
    ofd = read_ofd(build({"OFD.xml": b"\xef\xbb\xbf" + pretty.encode()}))
    assert ofd.bodies[0].doc_root == "Doc_0/Document.xml" and ofd.bodies[0].info.doc_id == "abc123"


def test_absolute_and_relative_references():
    ofd = read_ofd(build({"OFD.xml": OFD_XML.replace("<ofd:DocRoot>Doc_0", "<ofd:DocRoot>/Doc_0")
                         .replace("<ofd:Signatures>Doc_0", "<ofd:Signatures>/Doc_0")}))
    assert ofd.bodies[0].doc_root == "Doc_0/Document.xml"
    assert ofd.bodies[0].signatures == "Doc_0/Signs/Signatures.xml"


def test_root_relative_page_paths_inside_the_document_are_found():
    document = DOCUMENT_XML.replace('BaseLoc="Pages/Page_1', 'BaseLoc="Doc_0/Pages/Page_1')
    assert read_ofd(build({"Doc_0/Document.xml": document})).bodies[0].document.pages[1].path == \
        "Doc_0/Pages/Page_1/Content.xml"


def test_template_path_in_the_wrong_case_is_found():
    document = DOCUMENT_XML.replace('BaseLoc="Tpls/Tpl_0', 'BaseLoc="TPLS/Tpl_0')
    ofd = read_ofd(build({"Doc_0/Document.xml": document}))
    assert ofd.bodies[0].document.templates["2"] == "Doc_0/Tpls/Tpl_0/Content.xml"
    assert ofd.page_text(0, 0).startswith("中华人民共和国营业执照")


def test_absent_resources_templates_and_signatures_are_reported_not_fatal():
    ofd = read_ofd(build({"Doc_0/Res/seal.png": None, "Doc_0/PublicRes.xml": None,
                          "Doc_0/Tpls/Tpl_1/Content.xml": None, "Doc_0/Signs/Signatures.xml": None}))
    doc = ofd.bodies[0].document
    assert set(doc.missing) == {"Doc_0/Res/seal.png", "Doc_0/PublicRes.xml", "Doc_0/Tpls/Tpl_1/Content.xml"}
    assert doc.fonts == {} and doc.media["7"] == "Doc_0/Res/seal.png"
    assert ofd.bodies[0].signatures == "Doc_0/Signs/Signatures.xml"
    assert ofd.bodies[0].signatures not in ofd.package
    assert "仅供核验" not in ofd.page_text(0, 0)


def test_without_signatures_maxunitid_and_docinfo():
    ofd_xml = f"<ofd:OFD {NS}><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody>" \
        "</ofd:OFD>"
    document = DOCUMENT_XML.replace("<ofd:MaxUnitID>40</ofd:MaxUnitID>", "")
    ofd = read_ofd(build({"OFD.xml": ofd_xml, "Doc_0/Document.xml": document}))
    body = ofd.bodies[0]
    assert body.signatures is None and body.info.doc_id is None and dict(body.info.custom_data) == {}
    assert body.document.max_unit_id is None


def test_several_doc_bodies():
    second = OFD_XML.split("<ofd:DocBody>")[1].split("</ofd:DocBody>")[0].replace("Doc_0", "Doc_1")
    ofd_xml = OFD_XML.replace("</ofd:DocBody>", f"</ofd:DocBody><ofd:DocBody>{second}</ofd:DocBody>")
    parts = entries({"OFD.xml": ofd_xml})
    parts.update({name.replace("Doc_0", "Doc_1"): data for name, data in entries().items()
                  if name.startswith("Doc_0/")})
    ofd = read_ofd(write_package(parts))
    assert [b.doc_root for b in ofd.bodies] == ["Doc_0/Document.xml", "Doc_1/Document.xml"]
    assert ofd.page_text(1, 1) == "湖南省长沙市"


# --- malformed input ------------------------------------------------------------------------------

def refused(data: bytes, *fragments: str) -> str:
    with pytest.raises(OfdFormatError) as info:
        read_ofd(data)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_not_a_zip():
    with pytest.raises(PackageError, match="not a ZIP"):
        read_ofd(b"<OFD/>")


def test_missing_ofd_xml():
    refused(build({"OFD.xml": None}), "no OFD.xml")


def test_wrong_root_element():
    refused(build({"OFD.xml": f"<ofd:Document {NS}/>"}), "OFD.xml", "not OFD")


def test_no_doc_body():
    refused(build({"OFD.xml": f"<ofd:OFD {NS}/>"}), "OFD.xml: no DocBody")


def test_doc_body_without_doc_root():
    ofd_xml = f"<ofd:OFD {NS}><ofd:DocBody><ofd:DocRoot> </ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    refused(build({"OFD.xml": ofd_xml}),
            "OFD.xml: a DocBody has no DocRoot")


def test_doc_root_that_is_not_there():
    refused(build({"Doc_0/Document.xml": None}), "DocRoot 'Doc_0/Document.xml' is not in the package")


def test_a_reference_climbing_out_of_the_package():
    refused(build({"OFD.xml": OFD_XML.replace("<ofd:Signatures>Doc_0", "<ofd:Signatures>../../Doc_0")}),
            "climbs above the package root")


def test_malformed_document_xml():
    refused(build({"Doc_0/Document.xml": "<ofd:Document"}), "Doc_0/Document.xml: not well-formed")


def test_xxe_in_a_part_is_refused_naming_it():
    evil = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + DOCUMENT_XML
    refused(build({"Doc_0/Document.xml": evil}), "Doc_0/Document.xml", "DOCTYPE")


def test_document_without_common_data():
    refused(build({"Doc_0/Document.xml": f"<ofd:Document {NS}><ofd:Pages/></ofd:Document>"}),
            "Doc_0/Document.xml: no CommonData")


def test_document_without_physical_box():
    document = DOCUMENT_XML.replace("<ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox>", "")
    refused(build({"Doc_0/Document.xml": document}),
            "Doc_0/Document.xml: no CommonData/PageArea/PhysicalBox")


@pytest.mark.parametrize("box", ["0 0 210", "0 0 A4 x", "0 0 210 297 1"])
def test_bad_physical_box(box):
    refused(build({"Doc_0/Document.xml": DOCUMENT_XML.replace("0 0 210 297", box)}), "Doc_0/Document.xml",
            "PhysicalBox")


def test_document_without_pages():
    document = DOCUMENT_XML.split("<ofd:Pages>")[0] + "<ofd:Pages/></ofd:Document>"
    refused(build({"Doc_0/Document.xml": document}), "Doc_0/Document.xml: no pages")


def test_page_without_base_loc():
    refused(build({"Doc_0/Document.xml": DOCUMENT_XML.replace(' BaseLoc="Pages/Page_1/Content.xml"', "")}),
            "page '20' has no BaseLoc")


def test_page_file_that_does_not_exist():
    refused(build({"Doc_0/Pages/Page_1/Content.xml": None}), "Doc_0/Document.xml", "page '20'",
            "Pages/Page_1/Content.xml", "is not in the package")


def test_bad_max_unit_id():
    refused(build({"Doc_0/Document.xml": DOCUMENT_XML.replace(">40<", ">forty<")}), "MaxUnitID 'forty'")


def test_template_page_without_id():
    refused(build({"Doc_0/Document.xml": DOCUMENT_XML.replace('TemplatePage ID="2" ', "TemplatePage ")}),
            "TemplatePage lacks its ID or BaseLoc")


def test_malformed_page_content_fails_its_text():
    ofd = read_ofd(build({"Doc_0/Pages/Page_1/Content.xml": "<ofd:Page><unclosed>"}))
    with pytest.raises(OfdFormatError, match=r"Doc_0/Pages/Page_1/Content\.xml: not well-formed"):
        ofd.page_text(0, 1)


def test_page_content_that_is_not_a_page():
    ofd = read_ofd(build({"Doc_0/Pages/Page_1/Content.xml": f"<ofd:Res {NS}/>"}))
    with pytest.raises(OfdFormatError, match="not Page"):
        ofd.page_text(0, 1)


def test_bad_boundary_fails_the_text():
    content = PAGE_1.replace('Boundary="20 40', 'Boundary="x 40')
    assert content != PAGE_1
    ofd = read_ofd(build({"Doc_0/Pages/Page_1/Content.xml": content}))
    with pytest.raises(OfdFormatError, match=r"Page_1/Content\.xml: Boundary 'x 40"):
        ofd.page_text(0, 1)


# --- interop: every file, each with something it must show ----------------------------------------

SIGNS = "Doc_0/Signs/Signatures.xml"
EXPECTED = {
    # file: (doc_root, signatures, page count, {page index: text fragments})
    "easyofd_guizhou_vat_special_einvoice_2022_sesv4.ofd":
        ("Doc_0/Document.xml", SIGNS, 1, {0: ["贵州增值税电子专用发票", "发票代码",
                                              "中国移动通信集团贵州有限公司黔南分公司"]}),
    "ofdjs_ccb_bank_receipt_ofdrw_gbt35275_pkcs9.ofd":
        ("Doc_0/Document.xml", SIGNS, 1, {0: ["中国农业大学", "中国建设银行股份有限公司北京上地支行"]}),
    "ofdrw_1_zhejiang_vat_einvoice_2020_sesv4.ofd":
        ("Doc_0/Document.xml", SIGNS, 1, {0: ["浙江增值税电子普通发票", "江苏京利华新材料有限公司",
                                              "购买方"]}),
    "ofdrw_DigitalSign_ofdrw_bare_sm2_sign.ofd": ("Doc_0/Document.xml", SIGNS, 1, {0: ["OFD Reader&Writer"]}),
    "ofdrw_SESV4SignDoc_ofdrw_sesv4.ofd":
        ("Doc_0/Document.xml", SIGNS, 1, {0: ["你好呀，OFD Reader&Writer！"]}),
    "ofdrw_SignScaleError_zhejiang_einvoice_platform_sesv4.ofd":
        ("Doc_0/Document.xml", SIGNS, 1, {0: ["浙江增值税电子普通发票", "江苏中电创新环境科技有限公司"]}),
    "ofdrw_allprotected_ofdrw_sesv4.ofd": ("Doc_0/Document.xml", SIGNS, 1, {0: ["OFD Reader&Writer"]}),
    "ofdrw_h_ofdrw_testseal_2sigs_sesv4.ofd": ("Doc_0/Document.xml", SIGNS, 5, {}),   # rectangles only
    "ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd":
        ("Doc_0/Document.xml", SIGNS, 7, {0: ["湖南省娄底市中级人民法院", "刑事裁定书"]}),
    "ofdrw_hist_kinggrid_auto_seal_sesv1.ofd":   # one TextObject per character
        ("Doc_0/Document.xml", SIGNS, 5, {0: ["湖南省长沙市中级人民法院", "民事判决书"]}),
    "ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd":
        ("Doc_0/Document.xml", SIGNS, 1, {0: ["泰安市不动产证明", "中国建设银行股份有限公司泰安分行"]}),
    "ofdrw_n_dms360_sesv1_does_not_verify.ofd":
        ("Doc_0/Document.xml", "Doc_0/Signatures.xml", 2, {0: ["关于同意张阿三同志辞职的批复"]}),
    "ofdrw_testImageNotFound_topsec_gbt35275_pkcs9_2sigs.ofd":
        ("Doc_0/Document_0.xml", SIGNS, 2, {0: ["矿产资源勘查许可证"]}),
    "ofdrw_v4signed_chongqing_test_einvoice_sesv4.ofd":   # template named TPLS/, stored as Tpls/
        ("Doc_0/Document.xml", SIGNS, 1, {0: ["重庆增值税电子普通发票", "科游迈利有限公司"]}),
    "ofdrw_zsbk_yunnan_2sigs_sesv4_modified_after_signing.ofd":
        ("Doc_0/Document.xml", SIGNS, 2, {0: ["建筑工程施工许可证"]}),
    "ofdrw_doc1File.ofd": ("Doc_1/Document.xml", None, 11, {0: ["十年生死两茫茫"]}),
    "ofdrw_fptpl_invoice_template.ofd":   # names a Signatures.xml it does not contain
        ("Doc_0/Document.xml", SIGNS, 1, {0: ["财天下科技有限公司", "发票代码"]}),
    "ofdrw_helloworld.ofd": ("Doc_0/Document.xml", None, 1, {0: ["你好呀，OFD Reader&Writer！"]}),
}

INTEROP_OFDS = [*sorted((INTEROP / "signed-ofd").glob("*.ofd")),
                *sorted((INTEROP / "unsigned-ofd").glob("*.ofd"))]


@pytest.mark.interop
@pytest.mark.parametrize("path", INTEROP_OFDS, ids=lambda p: p.name)
def test_every_interop_ofd_opens_and_gives_its_text(path):
    assert path.name in EXPECTED, f"{path.name}: add what this file must show to EXPECTED"
    doc_root, signatures, page_count, fragments = EXPECTED[path.name]
    ofd = read_ofd(path.read_bytes())
    body = ofd.bodies[0]
    assert body.doc_root == doc_root
    assert body.signatures == signatures
    assert len(body.document.pages) == page_count
    assert all(p.path in ofd.package for p in body.document.pages)
    text = ofd.text()
    assert len(text) == page_count
    for index, wanted in fragments.items():
        for fragment in wanted:
            assert fragment in text[index], f"{fragment!r} not in page {index}: {text[index][:300]!r}"
    if not fragments:
        assert all(t == "" for t in text)


@pytest.mark.interop
def test_interop_specifics():
    def read(name: str):
        folder = "unsigned-ofd" if name in ("ofdrw_doc1File.ofd", "ofdrw_fptpl_invoice_template.ofd",
                                            "ofdrw_helloworld.ofd") else "signed-ofd"
        return read_ofd((INTEROP / folder / name).read_bytes())

    chongqing = read("ofdrw_v4signed_chongqing_test_einvoice_sesv4.ofd").bodies[0]
    assert chongqing.document.templates["2"] == "Doc_0/Tpls/Tpl_0/Content.xml"
    assert chongqing.document.max_unit_id is None
    assert chongqing.info.custom_data["购买方名称"] == "科游迈利有限公司"
    image_not_found = read("ofdrw_testImageNotFound_topsec_gbt35275_pkcs9_2sigs.ofd").bodies[0].document
    assert image_not_found.missing == ("Doc_0/Res_0/image_135.PNG",)
    h = read("ofdrw_h_ofdrw_testseal_2sigs_sesv4.ofd").bodies[0].document
    assert h.missing == ("Doc_0/PublicRes.xml",)
    template = read("ofdrw_fptpl_invoice_template.ofd")
    assert template.bodies[0].signatures not in template.package
    assert len(template.bodies[0].document.templates) == 5
    anzhengtong = read("ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd").bodies[0]
    assert anzhengtong.info.title == "湖南省娄底市中级人民法院" and anzhengtong.info.creator == "WPS Writer"
    assert anzhengtong.document.fonts["5"].path == "Doc_0/Res/font2_797.ttf"
    kinggrid = read("ofdrw_hist_kinggrid_auto_seal_sesv1.ofd").bodies[0].document
    assert kinggrid.physical_box == (0, 0, 210.01, 297) and kinggrid.media["7"] == "Doc_0/Res/IM8-7.jpg"
