"""ofd.xml: no DTD, entities, PIs or unbounded XML; local-name access whatever the namespace."""

from __future__ import annotations

import pytest

from ofd.errors import OfdFormatError
from ofd.xml import OFD_NS, attr, child, child_text, children, duplicate_ids, local_name, numbers, parse

PART = "Doc_0/Document.xml"


def refused(data: bytes, fragment: str, **kwargs) -> str:
    with pytest.raises(OfdFormatError) as info:
        parse(data, PART, **kwargs)
    message = str(info.value)
    assert message.startswith(PART + ":"), message
    assert fragment in message, message
    return message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody>&lol9;</ofd:DocBody></ofd:OFD>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE OFD [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<OFD><DocBody><DocRoot>&xxe;</DocRoot></DocBody></OFD>"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE OFD [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<OFD/>"""


def test_billion_laughs_is_refused():
    refused(BILLION_LAUGHS, "DOCTYPE")


def test_xxe_is_refused_and_never_reads_the_file():
    message = refused(XXE, "DOCTYPE")
    assert "root:" not in message


def test_parameter_entity_to_the_network_is_refused():
    refused(XXE_PARAMETER, "DOCTYPE")


def test_a_doctype_alone_is_refused():
    refused(b'<?xml version="1.0"?><!DOCTYPE OFD><OFD/>', "DOCTYPE")
    refused(b'<!DOCTYPE OFD SYSTEM "ofd.dtd"><OFD/>', "DOCTYPE")


def test_a_doctype_in_utf16_is_refused_after_parsing():
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE OFD [<!ENTITY x "y">]><OFD>&x;</OFD>'
    refused(data.encode("utf-16"), "DOCTYPE")


def test_undeclared_entity_references_are_refused():
    refused(b"<OFD>&nbsp;</OFD>", "not well-formed")


def test_the_predefined_entities_and_character_references_are_read():
    root = parse(b"<OFD a='&quot;&apos;'>&lt;&gt;&amp;&#x53D1;&#31080;</OFD>", PART)
    assert root.text == "<>&发票" and root.get("a") == "\"'"


@pytest.mark.parametrize("data", [b"<OFD><?php system('id') ?></OFD>",
                                  b'<?xml-stylesheet type="text/xsl" href="http://x/evil.xsl"?><OFD/>',
                                  b"<OFD/><?trailing pi?>"])
def test_processing_instructions_are_refused(data):
    refused(data, "processing instruction")


def test_xinclude_is_not_processed():
    root = parse(b'<OFD xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/></OFD>',
                 PART)
    assert local_name(root[0]) == "include" and not (root[0].text or "")


def test_depth_limit():
    deep = b"<a>" * 65 + b"</a>" * 65
    refused(deep, "deeper than 64 levels")
    assert parse(b"<a>" * 64 + b"</a>" * 64, PART) is not None
    refused(b"<a>" * 11 + b"</a>" * 11, "deeper than 10", max_depth=10)


def test_very_deep_xml_is_refused_not_crashed():
    refused(b"<a>" * 100_000 + b"</a>" * 100_000, "")


def test_size_limit():
    refused(b"<OFD>" + b" " * 100 + b"</OFD>", "limit 50", max_size=50)


@pytest.mark.parametrize("data", [b"", b"   ", b"<OFD>", b"<OFD></ofd>", b"\x00\x01\x02", b"<a/><b/>"])
def test_malformed_xml(data):
    refused(data, "")


def test_nothing_is_stripped():
    root = parse(b"<OFD><!-- note --><A>  x  </A>\n  <B/></OFD>", PART)
    assert len(root) == 3 and root[1].text == "  x  " and root[1].tail == "\n  "


# --- producers' spellings -------------------------------------------------------------------------

_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>'
_PREFIXED = (b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" DocType="OFD"><ofd:DocBody>'
             b"<ofd:DocRoot>%s</ofd:DocRoot></ofd:DocBody></ofd:OFD>")
SPELLINGS = {
    "prefix": _HEAD + _PREFIXED % b" Doc_0/Document.xml ",
    "bom": b"\xef\xbb\xbf" + _HEAD + _PREFIXED % b"Doc_0/Document.xml",
    "default namespace": b'<OFD xmlns="http://www.ofdspec.org/2016" DocType="OFD"><DocBody><DocRoot>'
                         b"Doc_0/Document.xml</DocRoot></DocBody></OFD>",
    "old namespace": b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org" DocType="OFD"><ofd:DocBody>\n\t'
                     b"<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>\n</ofd:DocBody></ofd:OFD>",
    "no namespace": b'<OFD DocType="OFD"><DocBody><DocRoot>Doc_0/Document.xml</DocRoot></DocBody></OFD>',
    "gbk": '<?xml version="1.0" encoding="GBK"?><OFD DocType="OFD"><DocBody><DocRoot>Doc_0/Document.xml'
           "</DocRoot><Title>发票</Title></DocBody></OFD>".encode("gbk"),
}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_reads_the_same(spelling):
    root = parse(SPELLINGS[spelling], "OFD.xml")
    assert local_name(root) == "OFD" and attr(root, "DocType") == "OFD"
    body = child(root, "DocBody")
    assert body is not None and len(children(root, "DocBody")) == 1
    assert child_text(body, "DocRoot") == "Doc_0/Document.xml"


def test_accessors():
    root = parse(f'<ofd:Res xmlns:ofd="{OFD_NS}" xmlns:x="urn:x"><!-- c --><ofd:Font ID="1"/>'
                 '<ofd:Font x:ID="2"/><ofd:Empty/><Font ID="3"/></ofd:Res>'.encode(), PART)
    assert [attr(f, "ID") for f in children(root, "Font")] == ["1", "2", "3"]
    assert child(root, "Missing") is None and child_text(root, "Missing") is None
    assert child_text(root, "Empty") == ""
    assert attr(root, "ID") is None


def test_duplicate_ids_within_and_across_parts():
    one = parse(b'<Page><Layer ID="5"><TextObject ID="6"/><TextObject ID="6"/></Layer><X ID="7"/></Page>',
                PART)
    two = parse(b'<Page><Layer ID="7"/><Y ID="8"/></Page>', PART)
    assert duplicate_ids(one) == ["6"]
    assert duplicate_ids(one, two) == ["6", "7"]
    assert duplicate_ids(two) == []


def test_numbers():
    assert numbers("0 0 210 297", PART, "PhysicalBox", 4) == (0, 0, 210, 297)
    assert numbers("0.5,1,  2 ,3", PART, "Boundary", 4) == (0.5, 1, 2, 3)
    with pytest.raises(OfdFormatError, match="PhysicalBox '0 0 210' should be 4 numbers"):
        numbers("0 0 210", PART, "PhysicalBox", 4)
    with pytest.raises(OfdFormatError, match="is not a list of numbers"):
        numbers("0 0 a4 b", PART, "PhysicalBox", 4)
    with pytest.raises(OfdFormatError, match="non-finite"):
        numbers("0 0 nan inf", PART, "PhysicalBox", 4)
