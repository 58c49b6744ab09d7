"""Building a QR symbol the way the ``qrcode`` package does, module for module, faster.

``qrcode`` writes the data one bit at a time through Python method calls, computes the
Reed–Solomon check words with polynomial objects, and finds the mask (ISO/IEC 18004 §7.8.3) by
building the whole symbol eight times, placing every data bit in Python and scoring each with
module-by-module loops: together the costliest step of writing a licence. Here the whole
symbol, quiet zone included, is one Python integer — bit ``side² - 1 - (row·side + column)``
is the module at (row, column), so its binary digits read the symbol row by row from the top
left — and every step is a few operations on that integer:

* the version is fitted from the data's bit count, computed, not written;
* the data codewords are built in one Python integer, and the check words by long division
  with the generator's multiples tabled per block size, a row of the division one integer XOR;
* the data bits are put in place in one gather (``operator.itemgetter`` over the zigzag of the
  version, tabled once), and each mask is one XOR with that mask's pattern over the data modules;
* each mask's penalty (the four rules) is counted on the whole symbol at once: a neighbour is
  a shift by 1 (the next column) or by ``side`` (the next row); "same colour" is
  ``dark & dark>>k | light & light>>k``, where ``light`` is the symbol's own modules that are
  not dark, so the quiet zone is neither colour and no run, block or finder-like pattern
  reaches across a row's end into the next;
* the format (and version) information is OR-ed in from the bits qrcode's own
  ``setup_type_info`` / ``setup_type_number`` set, tabled per version, level and mask.

Every step mirrors qrcode's own (its ``best_fit``, ``util.create_data`` and ``util.lost_point``
on the trial symbols with the format information left light), so the chosen version and mask
— and therefore every module — are the ones ``QRCode.make`` gives; the tests compare both on
many payloads, and the penalty with ``util.lost_point`` on random matrices.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qrcode import LUT as QR_LUT
from qrcode import base as qr_base
from qrcode import main as qr_main
from qrcode import util as qr_util
from qrcode.exceptions import DataOverflowError


@dataclass(frozen=True)
class Symbol:
    """A finished QR symbol with its quiet zone: ``side`` × ``side`` modules as text, row by row
    from the top left, "1" dark and "0" light (what ``QRCode.get_matrix`` gives, as digits)."""

    version: int
    mask: int
    side: int
    text: str

    def rows(self) -> list[str]:
        """The symbol's rows, each ``side`` characters."""
        side = self.side
        return [self.text[i:i + side] for i in range(0, side * side, side)]


@dataclass(frozen=True)
class _Layout:
    """What every symbol of one version and quiet zone shares, as integers in the symbol's bit
    numbering: its modules (``data``: every module of the symbol proper, the quiet zone left
    out), the function patterns with the format and version areas light (``fixed``: qrcode's
    trial symbols), each mask's pattern over the data modules, and the gather that puts the data
    bits (in placement order, then one light "0") where the zigzag places them."""

    side: int
    count: int                # modules across the symbol proper
    data: int
    fixed: int
    masks: tuple[int, ...]
    capacity: int             # data modules
    gather: Callable[[str], tuple[str, ...]]


@functools.lru_cache(maxsize=16)
def _layout(version: int, border: int) -> _Layout:
    if border < 1:
        raise ValueError("the symbol needs a quiet zone of at least one module")
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
    side = count + 2 * border
    bit = _bits(side, border)
    place = {module: index for index, module in enumerate(order)}
    light = len(order)  # the index of the "0" after the data bits
    sources = [light] * (side * side)
    for (r, c), index in place.items():
        sources[(r + border) * side + c + border] = index
    masks = []
    for pattern in range(8):
        function = qr_util.mask_func(pattern)
        masks.append(sum(bit(r, c) for r, c in order if function(r, c)))
    return _Layout(
        side=side, count=count,
        data=sum(bit(r, c) for r in range(count) for c in range(count)),
        fixed=sum(bit(r, c) for r in range(count) for c in range(count) if modules[r][c]),
        masks=tuple(masks), capacity=len(order), gather=operator.itemgetter(*sources))


def _bits(side: int, border: int) -> Callable[[int, int], int]:
    """The bit of the module at (row, column) of the symbol proper."""
    top = side * side - 1

    def bit(r: int, c: int) -> int:
        return 1 << (top - (r + border) * side - (c + border))

    return bit


@functools.lru_cache(maxsize=64)
def _information(version: int, border: int, error_correction: int, mask: int) -> int:
    """The dark modules of the format information (and of the version information from
    version 7), as qrcode's ``setup_type_info`` and ``setup_type_number`` write them into the
    finished symbol: they are light in the trial symbols."""
    code = qr_main.QRCode(version=version, error_correction=error_correction)
    count = code.modules_count = version * 4 + 17
    code.modules = [[False] * count for _ in range(count)]
    code.setup_type_info(False, mask)
    if version >= 7:
        code.setup_type_number(False)
    bit = _bits(count + 2 * border, border)
    return sum(bit(r, c) for r in range(count) for c in range(count) if code.modules[r][c])


def penalty(dark: int, symbol: int, side: int, count: int) -> int:
    """ISO/IEC 18004's penalty score (qrcode's ``util.lost_point``) of the symbol whose dark
    modules are the bits of ``dark``, ``symbol`` being the bits of all its modules (``count``
    × ``count`` of them) in rows of ``side`` bits, the rest of each row light quiet zone."""
    light = dark ^ symbol
    runs = finders = 0
    same = []
    for k in (1, side):  # along rows, then along columns
        # Equal neighbours of the symbol proper (the quiet zone is neither colour).
        equal = (dark & dark >> k) | (light & light >> k)
        same.append(equal)
        # A run of L >= 5 equal modules is L - 1 equal neighbours in a line (bits of ``equal``)
        # and costs L - 2: one per start of four equal neighbours, plus two per such run.
        fours = equal & equal >> k & equal >> 2 * k & equal >> 3 * k
        runs += fours.bit_count() + 2 * (fours & ~(fours >> k)).bit_count()
        # The finder-like pattern 1011101 with four light modules on one side or the other;
        # neither form overlaps itself, and both cannot start at one module.
        core = (dark & light >> k & dark >> 2 * k & dark >> 3 * k & dark >> 4 * k & light >> 5 * k
                & dark >> 6 * k)
        gap = light & light >> k & light >> 2 * k & light >> 3 * k
        finders += (core & gap >> 7 * k).bit_count() + (gap & core >> 4 * k).bit_count()
    across, down = same
    blocks = (across & down & across >> side).bit_count()  # 2×2 squares of one colour
    share = int(abs(float(dark.bit_count()) / (count ** 2) * 100 - 50) / 5)
    return runs + 3 * blocks + 40 * finders + 10 * share


def matrix_penalty(modules: Sequence[Sequence[bool]]) -> int:
    """:func:`penalty` of a square matrix of modules (True = dark), without quiet zone."""
    count = len(modules)
    if count == 0 or any(len(row) != count for row in modules):
        raise ValueError("a QR symbol is a non-empty square of modules")
    bit = _bits(count + 2, 1)
    dark = sum(bit(r, c) for r, row in enumerate(modules) for c, value in enumerate(row) if value)
    symbol = sum(bit(r, c) for r in range(count) for c in range(count))
    return penalty(dark, symbol, count + 2, count)


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
        values = data.translate(_ALPHA_NUM_VALUES)  # each character's value, 0..44
        for i in range(0, len(values) - 1, 2):
            acc = acc << 11 | values[i] * 45 + values[i + 1]
        if len(values) % 2:
            acc = acc << 6 | values[-1]
    else:
        acc = acc << 8 * len(data) | int.from_bytes(data, "big") if data else acc
    return acc


_ALPHA_NUM_VALUES = bytes.maketrans(qr_util.ALPHA_NUM, bytes(range(len(qr_util.ALPHA_NUM))))


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
    # Interleaved: the first word of each block, then the second, ... (shorter blocks end first).
    return [word for group in (data_blocks, check_blocks) for column in itertools.zip_longest(*group)
            for word in column if word is not None]


# -- the symbol ---------------------------------------------------------------------------------

def encode(chunks: Sequence[qr_util.QRData], error_correction: int, border: int) -> Symbol:
    """What ``QRCode.make(fit=True)`` and ``get_matrix()`` give for ``chunks`` at
    ``error_correction`` with a quiet zone of ``border`` (>= 1) modules: fit the version,
    encode, choose the mask (the first of the lowest penalty, as qrcode does)."""
    chunks = list(chunks)
    version = fit_version(chunks, error_correction)
    words = create_data(version, error_correction, chunks)
    layout = _layout(version, border)
    bits = format(int.from_bytes(bytes(words), "big"), f"0{8 * len(words)}b") if words else ""
    # Bits past the codewords are light before masking (qrcode's map_data), then "0" for the
    # rest of the symbol, whose dark function modules ``fixed`` adds.
    bits = bits[:layout.capacity].ljust(layout.capacity, "0") + "0"
    placed = int("".join(layout.gather(bits)), 2)
    best, lowest, chosen = 0, None, 0
    for pattern, mask in enumerate(layout.masks):
        dark = layout.fixed | (placed ^ mask)
        score = penalty(dark, layout.data, layout.side, layout.count)
        if lowest is None or score < lowest:
            best, lowest, chosen = pattern, score, dark
    chosen |= _information(version, border, error_correction, best)
    return Symbol(version, best, layout.side, format(chosen, f"0{layout.side ** 2}b"))
