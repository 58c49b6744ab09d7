"""Building a QR symbol the way the ``qrcode`` package does, module for module, faster.

``qrcode`` writes the data one bit at a time through Python method calls, computes the
Reed–Solomon check words with polynomial objects, and finds the mask (ISO/IEC 18004 §7.8.3) by
building the whole symbol eight times, placing every data bit in Python and scoring each with
module-by-module loops: together the costliest step of writing a licence. Here:

* the version is fitted from the data's bit count, computed, not written;
* the data codewords are built in one Python integer, and the check words by long division
  with the generator's multiples tabled per block size, a row of the division one integer XOR;
* the mask comes from one trial symbol: the other seven differ from it only at the data
  modules, by a fixed pattern per version and mask, so each is one XOR per row of Python
  integers; the four penalty rules are counted on rows and columns as integers (runs, 2×2
  blocks and the dark share by bit operations) and as text (the finder-like pattern).

Every step mirrors qrcode's own (its ``best_fit``, ``util.create_data`` and ``util.lost_point``
on the trial symbols with the format information left light), so the chosen version and mask
— and therefore every module — are the ones ``QRCode.make`` gives; the tests compare both on
many payloads.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from qrcode import LUT as QR_LUT
from qrcode import base as qr_base
from qrcode import main as qr_main
from qrcode import util as qr_util
from qrcode.exceptions import DataOverflowError


@dataclass(frozen=True)
class _Layout:
    """What every symbol of one version shares: its size, the function patterns with the format
    and version areas light (qrcode's trial symbols), one integer per row; the data modules in
    placement order (row, column bit); and per mask, the row bits where its symbol differs from
    mask 0's."""

    count: int
    fixed: tuple[int, ...]
    order: tuple[tuple[int, int], ...]
    mask0: tuple[bool, ...]
    flips: tuple[tuple[int, ...], ...]
    column_flips: tuple[tuple[int, ...], ...]  # the same differences, one integer per column


@functools.lru_cache(maxsize=8)
def _layout(version: int) -> _Layout:
    code = qr_main.QRCode(version=version)
    count = code.modules_count = version * 4 + 17
    code.modules = [[None] * count for _ in range(count)]
    code.setup_position_probe_pattern(0, 0)  # the steps of qrcode's makeImpl, in its order
    code.setup_position_probe_pattern(count - 7, 0)
    code.setup_position_probe_pattern(0, count - 7)
    code.setup_position_adjust_pattern()
    code.setup_timing_pattern()
    code.setup_type_info(True, 0)
    if version >= 7:
        code.setup_type_number(True)
    modules = code.modules
    order = []  # the zigzag of qrcode's map_data: column pairs from the right, up then down
    row, step = count - 1, -1
    for col in range(count - 1, 0, -2):
        if col <= 6:
            col -= 1
        while True:
            for c in (col, col - 1):
                if modules[row][c] is None:
                    order.append((row, c))
            row += step
            if row < 0 or row >= count:
                row -= step
                step = -step
                break
    fixed = tuple(int("".join("1" if m else "0" for m in line), 2) for line in modules)
    first = qr_util.mask_func(0)
    flips = []
    for pattern in range(8):
        other = qr_util.mask_func(pattern)
        rows = [0] * count
        for r, c in order:
            if first(r, c) != other(r, c):
                rows[r] |= 1 << (count - 1 - c)
        flips.append(tuple(rows))
    return _Layout(count, fixed, tuple((r, 1 << (count - 1 - c)) for r, c in order),
                   tuple(first(r, c) for r, c in order), tuple(flips),
                   tuple(tuple(columns_of(rows, count)) for rows in flips))


def _trial(layout: _Layout, codewords: list[int]) -> list[int]:
    """The symbol with mask 0 and the format information light, as qrcode's map_data leaves it
    (bits past the codewords are light before masking)."""
    rows = list(layout.fixed)
    bits = "".join(format(word, "08b") for word in codewords)[:len(layout.order)]
    bits = bits.ljust(len(layout.order), "0")
    for (r, bit), value, flip in zip(layout.order, bits, layout.mask0, strict=True):
        if (value == "1") != flip:
            rows[r] |= bit
    return rows


def columns_of(rows: list[int] | tuple[int, ...], count: int) -> list[int]:
    """The symbol's columns as integers (MSB = row 0), from its rows (MSB = column 0)."""
    texts = [format(row, f"0{count}b") for row in rows]
    return [int("".join(column), 2) for column in zip(*texts, strict=True)]


def penalty(rows: list[int], count: int, columns: list[int] | None = None) -> int:
    """ISO/IEC 18004's penalty score of a symbol given as one integer per row (MSB = column 0)
    and, if known, per column (MSB = row 0; derived from the rows otherwise)."""
    if columns is None:
        columns = columns_of(rows, count)
    inner = (1 << (count - 1)) - 1
    runs = 0
    for line in itertools.chain(rows, columns):
        # A run of L >= 5 equal modules is L - 1 equal neighbours in a row (bits of ``equal``)
        # and costs L - 2: one per start of four equal neighbours, plus two per such run.
        equal = ~(line ^ (line >> 1)) & inner
        fours = equal & (equal >> 1) & (equal >> 2) & (equal >> 3)
        runs += fours.bit_count() + 2 * (fours & ~(fours >> 1)).bit_count()
    # Rows and columns in one text, a line each: the finder-like pattern never crosses a break.
    width = f"0{count}b"
    lines = "\n".join([format(line, width) for line in itertools.chain(rows, columns)])
    blocks = 0
    for upper, lower in itertools.pairwise(rows):
        same = ~(upper ^ lower)
        blocks += (same & (same >> 1) & ~(upper ^ (upper >> 1)) & inner).bit_count()
    # Neither pattern overlaps itself and both cannot start at one place: counting each is exact.
    finders = lines.count("10111010000") + lines.count("00001011101")
    dark = sum(row.bit_count() for row in rows)
    share = int(abs(float(dark) / (count ** 2) * 100 - 50) / 5)
    return runs + 3 * blocks + 40 * finders + 10 * share


# -- data and check words ----------------------------------------------------------------------

_NUMBER_TAIL = {0: 0, 1: 4, 2: 7}


def _data_bits(chunk: qr_util.QRData) -> int:
    count = len(chunk.data)
    if chunk.mode == qr_util.MODE_NUMBER:
        return 10 * (count // 3) + _NUMBER_TAIL[count % 3]
    if chunk.mode == qr_util.MODE_ALPHA_NUM:
        return 11 * (count // 2) + 6 * (count % 2)
    return 8 * count


def fit_version(chunks: list[qr_util.QRData], error_correction: int) -> int:
    """The smallest version whose capacity at ``error_correction`` holds ``chunks``."""
    limits = qr_util.BIT_LIMIT_TABLE[error_correction]
    payload = sum(4 + _data_bits(chunk) for chunk in chunks)
    for version in range(1, 41):
        needed = payload + sum(qr_util.length_in_bits(chunk.mode, version) for chunk in chunks)
        if needed <= limits[version]:
            return version
    raise DataOverflowError("the data does not fit a QR code of version 40")


def _write(chunk: qr_util.QRData, acc: int) -> int:
    data = chunk.data
    if chunk.mode == qr_util.MODE_NUMBER:
        for i in range(0, len(data), 3):
            part = data[i:i + 3]
            acc = acc << qr_util.NUMBER_LENGTH[len(part)] | int(part)
    elif chunk.mode == qr_util.MODE_ALPHA_NUM:
        find = qr_util.ALPHA_NUM.find
        for i in range(0, len(data) - 1, 2):
            acc = acc << 11 | find(data[i:i + 1]) * 45 + find(data[i + 1:i + 2])
        if len(data) % 2:
            acc = acc << 6 | find(data[-1:])
    else:
        acc = acc << 8 * len(data) | int.from_bytes(data, "big") if data else acc
    return acc


@functools.lru_cache(maxsize=64)
def _multiples(ec_count: int) -> tuple[int, ...]:
    """For each factor 0..255, the generator's coefficients after the leading 1 times that
    factor in GF(256), as one integer of ``ec_count`` bytes (coefficient-wise addition in
    GF(256) is XOR, so a whole row of the division is one integer XOR)."""
    if ec_count in QR_LUT.rsPoly_LUT:
        coefficients = QR_LUT.rsPoly_LUT[ec_count]
    else:
        poly = qr_base.Polynomial([1], 0)
        for i in range(ec_count):
            poly = poly * qr_base.Polynomial([1, qr_base.gexp(i)], 0)
        coefficients = [poly[i] for i in range(len(poly))]
    exp, log = qr_base.EXP_TABLE, qr_base.LOG_TABLE
    logs = [log[c] for c in coefficients[1:]]
    rows = [0]
    for factor in range(1, 256):
        shift = log[factor]
        rows.append(int.from_bytes(bytes(exp[(g + shift) % 255] for g in logs), "big"))
    return tuple(rows)


def _check_words(block: list[int], ec_count: int) -> list[int]:
    """The Reed–Solomon check words of ``block``: its remainder modulo the generator, by long
    division one data word at a time (the remainder held as one ``ec_count``-byte integer)."""
    multiples = _multiples(ec_count)
    top, mask = 8 * (ec_count - 1), (1 << 8 * ec_count) - 1
    remainder = 0
    for word in block:
        factor = word ^ (remainder >> top)
        remainder = ((remainder << 8) & mask) ^ multiples[factor]
    return list(remainder.to_bytes(ec_count, "big"))


def create_data(version: int, error_correction: int, chunks: list[qr_util.QRData]) -> list[int]:
    """The symbol's codewords, data and check words interleaved (qrcode's ``util.create_data``)."""
    acc, bits = 0, 0
    for chunk in chunks:
        length_bits = qr_util.length_in_bits(chunk.mode, version)
        acc = acc << 4 | chunk.mode
        acc = acc << length_bits | len(chunk.data)
        acc = _write(chunk, acc)
        bits += 4 + length_bits + _data_bits(chunk)
    blocks = qr_base.rs_blocks(version, error_correction)
    limit = sum(block.data_count * 8 for block in blocks)
    if bits > limit:
        raise DataOverflowError(f"Code length overflow. Data size ({bits}) > size available ({limit})")
    terminator = min(limit - bits, 4)
    acc, bits = acc << terminator, bits + terminator
    if bits % 8:
        acc, bits = acc << (8 - bits % 8), bits + 8 - bits % 8
    words = list(acc.to_bytes(bits // 8, "big")) if bits else []
    words += [qr_util.PAD0 if i % 2 == 0 else qr_util.PAD1 for i in range((limit - bits) // 8)]
    data_blocks, check_blocks, offset = [], [], 0
    for block in blocks:
        chunk = words[offset:offset + block.data_count]
        offset += block.data_count
        data_blocks.append(chunk)
        check_blocks.append(_check_words(chunk, block.total_count - block.data_count))
    out = []
    for group in (data_blocks, check_blocks):
        for i in range(max(len(b) for b in group)):
            out.extend(b[i] for b in group if i < len(b))
    return out


# -- the symbol ---------------------------------------------------------------------------------

def make(code: qr_main.QRCode) -> int:
    """Do what ``code.make(fit=True)`` does for data added to ``code``: fit the version, encode,
    choose the mask and leave the finished symbol in ``code.modules``. Returns the mask."""
    code.version = fit_version(code.data_list, code.error_correction)
    code.data_cache = create_data(code.version, code.error_correction, code.data_list)
    layout = _layout(code.version)
    count = code.modules_count = layout.count
    base = _trial(layout, code.data_cache)
    base_columns = columns_of(base, count)  # transposed once; each mask flips fixed bits of both
    best, lowest, chosen = 0, None, base
    for pattern, (flip, column_flip) in enumerate(zip(layout.flips, layout.column_flips, strict=True)):
        rows = [row ^ f for row, f in zip(base, flip, strict=True)]
        columns = [column ^ f for column, f in zip(base_columns, column_flip, strict=True)]
        score = penalty(rows, count, columns)
        if lowest is None or score < lowest:
            best, lowest, chosen = pattern, score, rows
    # The trial symbol with the format (and version) information written in: the real one.
    code.modules = [[bit == "1" for bit in format(row, f"0{count}b")] for row in chosen]
    code.setup_type_info(False, best)
    if code.version >= 7:
        code.setup_type_number(False)
    code.mask_pattern = best
    return best
