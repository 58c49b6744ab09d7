"""Masking the holder's name and code: enough for a person to recognise the licence in
front of them, not enough to learn who holds it.

Names: 张*三 for three characters, 张* for two, first and last kept (one * per hidden character)
for longer ones. Codes (credit codes, ID numbers, passports): ``min(4, len // 4)`` characters
kept at each end, so at most half of a code is ever shown and short codes show much less —
4401**********1234 for an 18-character ID number (8 of 18 shown), E1*****78 for a 9-character
passport, 123******012 for 12 characters (half shown, half hidden). A code of three characters
or fewer is masked whole: nothing is ever returned unmasked.
"""

from __future__ import annotations

#: The most characters a code keeps at each end.
MAX_KEPT = 4


def mask_name(name: str) -> str:
    """张三 -> 张*, 张小三 -> 张*三, 示例科技有限公司 -> 示******司."""
    chars = list(name.strip())
    if len(chars) <= 1:
        return "*" * len(chars)
    if len(chars) == 2:
        return chars[0] + "*"
    return chars[0] + "*" * (len(chars) - 2) + chars[-1]


def kept_per_side(length: int) -> int:
    """How many characters a code of ``length`` keeps at each end: a quarter, at most four."""
    return min(MAX_KEPT, length // 4)


def mask_code(code: str) -> str:
    """440101199001011234 -> 4401**********1234, E12345678 -> E1*****78, ABC -> ***."""
    chars = list(code.strip())
    keep = kept_per_side(len(chars))
    if keep == 0:
        return "*" * len(chars)
    return "".join(chars[:keep]) + "*" * (len(chars) - 2 * keep) + "".join(chars[-keep:])
