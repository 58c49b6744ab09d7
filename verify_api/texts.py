"""The words of the public pages, in Chinese (the default) and English.

Plain words for people holding a phone: what the verdict means and what to do, never an
error code alone.
"""

from __future__ import annotations

from datetime import date, datetime

from licences.states import CHINA_TIME, china_text  # noqa: F401 - CHINA_TIME: the pages' clock, re-exported

LANGUAGES = ("zh", "en")

STATUS_WORDS = {
    "zh": {"valid": "有效", "suspended": "已暂停（中止）", "cancelled": "已撤销", "deregistered": "已注销",
           "expired": "已过期", "transferred": "已迁出", "revoked": "已吊销", "other": "其他（非有效）",
           "superseded": "已被新版本取代", "unknown": "未知"},
    "en": {"valid": "valid", "suspended": "suspended", "cancelled": "cancelled",
           "deregistered": "deregistered",
           "expired": "expired", "transferred": "transferred out", "revoked": "revoked",
           "other": "other (not valid)", "superseded": "superseded by a newer version", "unknown": "unknown"},
}

TEXTS = {
    "zh": {
        "html_lang": "zh-CN",
        "title": "电子证照核验",
        "switch": "English",
        "switch_lang": "en",
        "verdict_valid": "证照真实有效",
        "verdict_not_valid": "证照真实，但当前不是有效状态",
        "verdict_unknown": "无法确认：不是真实有效的证照",
        "reason_valid": "签发部门的电子签名验证通过，证照库中此证照的状态为有效。",
        "reason_not_valid": "签发部门的电子签名验证通过，但此证照目前{status}，不能作为有效证照使用。",
        "reason_superseded": ("此证照已变更或换发，以新版本为准：持证人已领取新版本证照"
                              "（标识和状态见下方“现行版本”）。"
                              "此二维码属于旧版本，请让出示者出示新版本证照的二维码再核验。"),
        "reason_unknown": ("此二维码无法确认：它不是由登记的签发部门签名的，或证照库中没有与之对应的证照。"
                           "请勿信任此证照，并向出示者核实。"),
        "type": "证照类型", "issuer": "签发部门", "status": "状态", "validity": "有效期",
        "holder": "持证主体", "holder_code": "主体代码", "identifier": "证照标识",
        "checked": "核验时间", "china_time": "北京时间", "long_term": "长期", "to": "至",
        "current_version": "现行版本", "current_version_status": "现行版本状态",
        "open_current": "查看现行版本",
        "privacy": "为保护个人信息，姓名和代码已部分隐藏。",
        "upload_title": "上传电子证照文件核验",
        "upload_hint": "选择 OFD 或 PDF 文件（不超过 {limit} MB），核验其电子签章和证照状态。",
        "upload_button": "核验",
        "report_title": "文件核验结果",
        "registry_status": "证照库状态",
        "not_in_registry": "此文件不是本系统证照库中登记的证照文件（仍可能是有效的已签章文件）。",
        "signature": "签章", "checks": "检查项", "result": "结果",
        "doc_passed": "文件签章验证通过", "doc_failed": "文件签章验证失败", "doc_indeterminate": "无法确定",
        "doc_unsigned": "文件未签章",
        "error_title": "出错了", "back": "返回",
        "presented_live_title": "持证人现场亮证",
        "presented_live": ("持证人于 {time}（北京时间）现场生成了此一次性亮证码，本次核验已将其用掉："
                           "截图或转发的旧码不会再通过。"),
        "presentation_invalid": "亮证码无效（已过期或已使用）",
        "presentation_invalid_reason": ("此亮证码已过期、已被核验过或不存在，不能证明持证人现场出示了证照。"
                                        "请让持证人在手机上重新生成亮证码再扫码核验。"),
        "presentation_confirm_title": "核验现场出示的证照",
        "presentation_confirm_hint": ("这是持证人现场出示的一次性亮证码，只能核验一次。"
                                      "请当着出示者的面点击下方按钮查看核验结果。"),
        "presentation_confirm_button": "核验亮证码",
        "copy_title": "加注件",
        "copy_note": ("此文件是数据共享服务为下列用证单位和用证事由生成的加注件，"
                      "仅在有效期内、仅为该事由有效。"),
        "copy_expired": "加注件已过期",
        "copy_expired_reason": ("此加注件的有效期已过：其电子签章仍可验证，"
                                "但不得再作为现行有效的证照材料使用。请向持证人或签发部门获取最新材料。"),
        "copy_department": "用证单位", "copy_purpose": "用证事由", "copy_expires": "有效期至",
        "copy_number": "加注编号", "copy_licence": "原证照标识",
        "copy_withdrawn": "加注件已失效：持证人的授权已撤回或已到期",
        "copy_withdrawn_reason": ("持证人给用证单位的授权已撤回或已到期，此加注件自此不再有效："
                                  "其电子签章仍可验证，但不得再作为证照材料使用。"),
    },
    "en": {
        "html_lang": "en",
        "title": "E-licence verification",
        "switch": "中文",
        "switch_lang": "zh",
        "verdict_valid": "Authentic and valid",
        "verdict_not_valid": "Authentic, but not valid now",
        "verdict_unknown": "Not confirmed: not an authentic, valid licence",
        "reason_valid": ("The issuing department's digital signature is genuine and the licence register "
                         "lists this licence as valid."),
        "reason_not_valid": ("The issuing department's digital signature is genuine, but this licence is now "
                             "{status}: do not accept it as a valid licence."),
        "reason_superseded": ("This licence was changed or renewed; the newer version is the one that "
                              "counts: the holder has been issued a new licence (its identifier and status "
                              "are under \"Current version\" below). This QR code belongs to the old "
                              "version: ask for the new version's QR code and check that one."),
        "reason_unknown": ("This QR code could not be confirmed: it was not signed by a registered issuing "
                           "department, or no licence in the register matches it. Do not rely on it; check "
                           "with the person who showed it."),
        "type": "Licence type", "issuer": "Issued by", "status": "Status", "validity": "Valid",
        "holder": "Holder", "holder_code": "Holder code", "identifier": "Licence identifier",
        "checked": "Checked at", "china_time": "China Standard Time", "long_term": "long-term", "to": "to",
        "current_version": "Current version", "current_version_status": "Current version status",
        "open_current": "Open the current version",
        "privacy": "Names and codes are partly hidden to protect personal data.",
        "upload_title": "Verify an e-licence file",
        "upload_hint": ("Choose an OFD or PDF file (up to {limit} MB) to check its e-seals and licence "
                        "status."),
        "upload_button": "Verify",
        "report_title": "Verification result",
        "registry_status": "Licence register status",
        "not_in_registry": ("This file is not a licence document recorded in this register (it may still be "
                            "a validly sealed document)."),
        "signature": "Signature", "checks": "Checks", "result": "Result",
        "doc_passed": "Signatures valid", "doc_failed": "Signatures invalid",
        "doc_indeterminate": "Cannot tell",
        "doc_unsigned": "No signature",
        "error_title": "Something went wrong", "back": "Back",
        "presented_live_title": "Presented live by the holder",
        "presented_live": ("The holder made this single-use presentation code at {time} (China "
                           "Standard Time) and this check has used it up: a screenshot or a "
                           "forwarded copy will not pass again."),
        "presentation_invalid": "Presentation not valid (expired or already used)",
        "presentation_invalid_reason": ("This presentation code has expired, was already checked, or "
                                        "does not exist: it does not show that the holder presented "
                                        "the licence live. Ask the holder to make a new code on their "
                                        "phone and scan that one."),
        "presentation_confirm_title": "Check a licence presented live",
        "presentation_confirm_hint": ("This is a single-use code the holder is showing you now: it can "
                                      "be checked once. Press the button while they are in front of "
                                      "you to see the result."),
        "presentation_confirm_button": "Check the code",
        "copy_title": "Annotated copy (加注件)",
        "copy_note": ("This file is an annotated copy the data-sharing service made for the department and "
                      "purpose below: it is good only for that purpose, and only until its expiry."),
        "copy_expired": "Annotated copy expired",
        "copy_expired_reason": ("This annotated copy's time is up: its e-seal still verifies, but it must "
                                "not be accepted as current. Ask the holder or the issuing department for "
                                "current documents."),
        "copy_department": "Department", "copy_purpose": "Purpose", "copy_expires": "Valid until",
        "copy_number": "Copy number", "copy_licence": "Licence identifier",
        "copy_withdrawn": "Annotated copy no longer valid: the holder's consent was withdrawn or ended",
        "copy_withdrawn_reason": ("The holder's grant to the department was withdrawn or has ended, and this "
                                  "copy ended with it: its e-seal still verifies, but it must not be "
                                  "accepted."),
    },
}


def language(value: str | None) -> str:
    """The page language from ``?lang=``: ``en`` or the default ``zh`` (anything else is zh)."""
    return "en" if (value or "").strip().lower().startswith("en") else "zh"


def china_time(moment: datetime) -> str:
    """``2026-01-02 15:04:05`` in China Standard Time (the clock people in China read)."""
    return china_text(moment)


def day(value: date | None, lang: str) -> str:
    return TEXTS[lang]["long_term"] if value is None else value.isoformat()
