"""The public service's small parts: masking, the token bucket and its client keys, settings from
the environment, the page's Content-Security-Policy hash, the access-log filter, the upload
package limits and validation slots, serve-verify's proxy list."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from ledger.config import ConfigError
from verify_api import pages
from verify_api.masking import mask_code, mask_name
from verify_api.ratelimit import RateLimiter, client_key, retry_after
from verify_api.settings import MIB, VerifySettings


@pytest.mark.parametrize("name, masked", [
    ("张三", "张*"), ("张小三", "张*三"), ("欧阳小明", "欧**明"), ("王", "*"), ("", ""),
    ("示例市闽江云数科技有限公司", "示" + "*" * 11 + "司"), ("  李四 ", "李*"),
])
def test_names(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("code, masked", [
    ("440101199001011234", "4401**********1234"), ("91350102MA8T2K3X24", "9135**********3X24"),
    ("110350100004721", "110*********721"),  # 15: a certificate number
    ("E12345678", "E1*****78"),  # 9: a passport
    ("A123456789", "A1******89"),  # 10
    ("123456789012", "123******012"),  # 12
    ("G1234567", "G1****67"), ("ABCD", "A**D"), ("ABC", "***"), ("AB", "**"),
])
def test_codes(code, masked):
    assert mask_code(code) == masked
    assert len(mask_code(code)) == len(code)


@pytest.mark.parametrize("length", range(1, 41))
def test_codes_always_hide_at_least_half(length):
    """A passport (9), a 10- or 12-character code kept 4 + 4 would show most of itself."""
    masked = mask_code("X" * length)
    assert masked.count("*") * 2 >= length and masked.count("*") >= 1
    assert len(masked) - masked.count("*") <= 8


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate():
    clock = Clock()
    limiter = RateLimiter(per_minute=6, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    wait = limiter.take("a")
    assert wait == pytest.approx(10.0)  # one token every 10 s
    assert limiter.take("b") == 0  # other clients are not affected
    clock.now += 10
    assert limiter.take("a") == 0 and limiter.take("a") > 0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]  # refills up to the burst, no further
    assert limiter.take("a") > 0
    assert retry_after(0.2) == "1" and retry_after(9.01) == "10"


def test_token_bucket_memory_is_bounded():
    limiter = RateLimiter(per_minute=1, burst=1, max_clients=100, clock=Clock())
    for i in range(1000):
        limiter.take(f"client-{i}")
    assert len(limiter._buckets) == 100
    assert limiter.take("client-999") > 0  # the most recent are the ones kept


def test_settings_from_the_environment():
    assert VerifySettings.from_environment({}) == VerifySettings()
    environment = {"ZHENGYIN_VERIFY_MAX_UPLOAD": "1048576", "ZHENGYIN_VERIFY_RATE": "12.5",
                   "ZHENGYIN_VERIFY_HSTS": "Always"}
    custom = VerifySettings.from_environment(environment)
    assert custom.max_upload == MIB and custom.rate_per_minute == 12.5 and custom.hsts == "always"
    for variable, value, words in (("ZHENGYIN_VERIFY_RATE", "fast", "must be a float"),
                                   ("ZHENGYIN_VERIFY_BURST", "0", "from 1"),
                                   ("ZHENGYIN_VERIFY_HSTS", "sometimes", "always, auto or never")):
        with pytest.raises(ConfigError, match=words) as info:
            VerifySettings.from_environment({variable: value})
        assert variable in str(info.value)


def test_the_csp_allows_exactly_the_page_style_sheet():
    digest = base64.b64encode(hashlib.sha256(pages.CSS.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in pages.CONTENT_SECURITY_POLICY
    html = pages.render("upload.html", "zh", limit_mb=20)
    (style,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert style == pages.CSS  # what the browser hashes is what the policy names
    assert "unsafe-inline" not in pages.CONTENT_SECURITY_POLICY


def test_templates_escape_what_they_show():
    html = pages.render("error.html", "en", message="<script>alert(1)</script>")
    assert "<script>" not in html and "&lt;script&gt;" in html


# ---- client keys (IPv6 by /64) --------------------------------------------------------------------------

def test_ipv6_clients_are_limited_by_their_64():
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1234") == "2001:db8::/64"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key("192.0.2.8") != client_key("192.0.2.7")
    assert client_key(None) == "unknown" and client_key("testclient") == "testclient"
    limiter = RateLimiter(per_minute=1, burst=2, clock=Clock())
    answers = [limiter.take(client_key(f"2001:db8::{i:x}")) for i in range(1000)]
    assert answers[:2] == [0, 0] and all(wait > 0 for wait in answers[2:])


# ---- the access log ---------------------------------------------------------------------------------------

PAYLOAD = "AEAEWSRDYSY7ZEI6DBGY72IACNIOWV46P6XNFNEAG4AAAAAAAAAAAAIAAFITL777AQXFGIKOIRI3QCC7WB2FH33W2P2G6TQ5"


def test_access_log_never_holds_a_payload_or_a_nonce(caplog):
    import logging

    from verify_api import access_log

    assert access_log.redact_path(f"/V/{PAYLOAD}?lang=en") == f"/V/{PAYLOAD[:8]}…?lang=en"
    assert access_log.redact_path("/api/v1/licences/1.2.3/status?nonce=" + "ab" * 16) == \
        "/api/v1/licences/1.2.3/status?nonce=…"
    assert access_log.redact_path("/upload?lang=en&NONCE=x") == "/upload?lang=en&NONCE=…"
    assert access_log.redact_path("/healthz") == "/healthz"
    assert access_log.redact_path("/V/SHORT") == "/V/SHORT"
    logger = logging.getLogger("test.verify_api.access")
    installed = access_log.install(logger.name)
    assert access_log.install(logger.name) is installed and logger.filters.count(installed) == 1
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            # the shape of uvicorn's access record: client, method, path, HTTP version, status
            logger.info('%s - "%s %s HTTP/%s" %d', "203.0.113.9:5000", "GET", f"/V/{PAYLOAD}", "1.1", 200)
        line = caplog.records[-1].getMessage()
        assert PAYLOAD not in line and PAYLOAD[:8] in line and '" 200' in line
    finally:
        logger.removeFilter(installed)


# ---- uploads: package limits and validation slots --------------------------------------------------------

def test_public_package_limits_follow_the_upload_limit():
    from ofd.package import Limits
    from verify_api.documents import public_limits

    limits, internal = public_limits(20 * MIB), Limits()
    assert limits.max_package_size == 20 * MIB and limits.max_total_size == 80 * MIB
    assert limits.max_entry_size == 32 * MIB and limits.max_total_ratio == 20
    assert limits.total_ratio_floor <= 8 * MIB
    assert limits.max_total_size < internal.max_total_size and limits.max_entry_size < internal.max_entry_size
    assert public_limits(MIB).max_total_size == 4 * MIB


def test_validation_slots_refuse_when_all_are_taken():
    from verify_api.documents import ValidationsBusy, ValidationSlots

    slots = ValidationSlots(2)
    with slots.take(), slots.take():
        with pytest.raises(ValidationsBusy), slots.take():
            pass
    with slots.take():  # released again, also after the refusal
        pass
    with pytest.raises(ValueError):
        ValidationSlots(0)
    assert VerifySettings.from_environment({"ZHENGYIN_VERIFY_MAX_VALIDATIONS": "3"}).max_validations == 3
    assert VerifySettings().max_validations >= 1


# ---- serve-verify's proxy list ----------------------------------------------------------------------------

def test_forwarded_allow_ips_are_checked_and_never_anyone_in_production():
    from trust.cli.serve_verify import ProxySettingError, forwarded_allow_ips

    assert forwarded_allow_ips(" 127.0.0.1, 10.0.0.0/24 ,::1", production=True) == "127.0.0.1,10.0.0.0/24,::1"
    with pytest.raises(ProxySettingError, match="any client"):
        forwarded_allow_ips("*", production=True)
    with pytest.raises(ProxySettingError, match="any client"):
        forwarded_allow_ips("127.0.0.1,*", production=True)
    assert forwarded_allow_ips("*", production=False) == "*"
    for bad in ("", "proxy.example", "10.0.0.300"):
        with pytest.raises(ProxySettingError):
            forwarded_allow_ips(bad, production=False)
