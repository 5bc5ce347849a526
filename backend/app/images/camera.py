"""Camera details (EXIF) read from an upload before its metadata is stripped.

Only the tags below are ever looked at: never location (the GPS IFD is not even
followed). The EXIF comes from a hostile file, so every field is read on its own and
becomes None when it is malformed (a zero denominator, a wrong type, text that is not
UTF-8, a number out of any camera's range); nothing here raises.

The TIFF structure is read by this small reader rather than by Pillow's `Exif`, which
decodes every tag of an IFD to reach one: about 0.5 ms for a camera's EXIF and 50 ms for
a hostile 64 KiB one, against tens of microseconds here, whatever the file holds.
"""

from __future__ import annotations

import codecs
import math
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import date, time
from typing import NamedTuple, TypeVar

T = TypeVar("T")

MAX_TEXT = 100  # characters kept of a text field (the columns' size)
_MAX_TEXT_BYTES = 4 * MAX_TEXT  # read of a text value before decoding: a 10 KB Make costs nothing
_MAX_ENTRIES = 1_000  # per IFD; cameras write fewer than 100, a hostile file up to 65,535
_EXIF_HEADER = re.compile(rb"^(?:Exif\x00\x00){1,2}")

# IFD0
_MAKE, _MODEL, _DATE_TIME, _EXIF_IFD = 0x010F, 0x0110, 0x0132, 0x8769
# The Exif IFD
_EXPOSURE_TIME, _F_NUMBER, _FOCAL_LENGTH = 0x829A, 0x829D, 0x920A
_ISO_SPEED_RATINGS, _RECOMMENDED_EXPOSURE_INDEX, _ISO_SPEED = 0x8827, 0x8832, 0x8833
_DATE_TIME_ORIGINAL, _DATE_TIME_DIGITIZED = 0x9003, 0x9004
_OFFSET_TIME, _OFFSET_TIME_ORIGINAL, _OFFSET_TIME_DIGITIZED = 0x9010, 0x9011, 0x9012
_LENS_MAKE, _LENS_MODEL = 0xA433, 0xA434

_IFD0_TAGS = frozenset({_MAKE, _MODEL, _DATE_TIME, _EXIF_IFD})
_EXIF_TAGS = frozenset(
    {
        _EXPOSURE_TIME,
        _F_NUMBER,
        _FOCAL_LENGTH,
        _ISO_SPEED_RATINGS,
        _RECOMMENDED_EXPOSURE_INDEX,
        _ISO_SPEED,
        _DATE_TIME_ORIGINAL,
        _DATE_TIME_DIGITIZED,
        _OFFSET_TIME,
        _OFFSET_TIME_ORIGINAL,
        _OFFSET_TIME_DIGITIZED,
        _LENS_MAKE,
        _LENS_MODEL,
    }
)

# TIFF field types: (struct code, bytes per value).
_ASCII, _UTF8 = 2, 129  # 129: EXIF 3.0's UTF-8 type
_TYPES = {
    1: ("B", 1),  # BYTE
    _ASCII: ("s", 1),
    3: ("H", 2),  # SHORT
    4: ("I", 4),  # LONG
    5: ("II", 8),  # RATIONAL
    6: ("b", 1),  # SBYTE
    7: ("s", 1),  # UNDEFINED
    8: ("h", 2),  # SSHORT
    9: ("i", 4),  # SLONG
    10: ("ii", 8),  # SRATIONAL
    11: ("f", 4),  # FLOAT
    12: ("d", 8),  # DOUBLE
    13: ("I", 4),  # IFD (an offset)
    _UTF8: ("s", 1),
}
_TEXT_TYPES = frozenset({_ASCII, _UTF8})
_INTEGER_TYPES = frozenset({1, 3, 4, 6, 8, 9, 13})
_NOT_NUMBERS = frozenset({_ASCII, 7, _UTF8})
_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


@dataclass(frozen=True, slots=True)
class CameraDetails:
    """What the camera recorded, each field None when absent or malformed."""

    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    # ISO 8601 as recorded: with the offset when the file has one, else local time.
    taken_at: str | None = None
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None  # millimetres
    orientation: int | None = None  # 1..8

    @property
    def present(self) -> bool:
        """Whether any field is known (a row is worth storing)."""
        return any(getattr(self, field.name) is not None for field in fields(self))


NO_DETAILS = CameraDetails()


class _Entry(NamedTuple):  # a tuple: built a dozen times per upload, it should be cheap
    """One IFD entry: its type and (the first bytes of) its value."""

    kind: int
    length: int  # how many values
    value: bytes


class _Tiff:
    """EXIF's TIFF structure, every offset checked against the data."""

    def __init__(self, data: bytes, endian: str) -> None:
        self.data = data
        self.endian = endian

    @classmethod
    def of(cls, exif: bytes) -> _Tiff | None:
        header = _EXIF_HEADER.match(exif)
        data = exif[header.end() :] if header else exif
        if data[:4] == b"II*\x00":
            return cls(data, "<")
        if data[:4] == b"MM\x00*":
            return cls(data, ">")
        return None

    def first_ifd(self) -> int | None:
        return self._u32(4)

    def entries(self, offset: int, wanted: frozenset[int]) -> dict[int, _Entry]:
        """The `wanted` entries of the IFD at `offset` (the first of a repeated tag)."""
        data, found = self.data, dict[int, _Entry]()
        count = self._u16(offset)
        if count is None:
            return found
        count = min(count, _MAX_ENTRIES, (len(data) - offset - 2) // 12)
        start = offset + 2
        flat = struct.unpack(self.endian + "HHI4s" * count, data[start : start + 12 * count])
        tags = flat[::4]  # searched in C: the loop runs over the few tags present
        for tag in wanted.intersection(tags):
            at = 4 * tags.index(tag)
            kind, n, raw = flat[at + 1 : at + 4]
            value = self._value(kind, n, raw) if kind in _TYPES else None
            if value is not None:
                found[tag] = _Entry(kind, n, value)
        return found

    def _value(self, kind: int, count: int, raw: bytes) -> bytes | None:
        """The entry's value bytes (text cut at `_MAX_TEXT_BYTES`); None when it lies
        outside the data."""
        size = count * _TYPES[kind][1]
        if size <= 4:
            return raw[:size]
        (offset,) = struct.unpack(self.endian + "I", raw)
        if offset + size > len(self.data):
            return None
        return self.data[offset : offset + min(size, _MAX_TEXT_BYTES)]

    def _u16(self, offset: int) -> int | None:
        if offset < 0 or offset + 2 > len(self.data):
            return None
        return int(struct.unpack_from(self.endian + "H", self.data, offset)[0])

    def _u32(self, offset: int) -> int | None:
        if offset + 4 > len(self.data):
            return None
        return int(struct.unpack_from(self.endian + "I", self.data, offset)[0])

    def number(self, entry: _Entry | None) -> float | None:
        """The entry's first value as a finite number; None for text or 0/0."""
        if entry is None or entry.kind in _NOT_NUMBERS or entry.length < 1:
            return None
        code, size = _TYPES[entry.kind]
        values = struct.unpack(self.endian + code, entry.value[:size])
        if len(values) == 2:
            numerator, denominator = values
            return numerator / denominator if denominator else None
        number = float(values[0])
        return number if math.isfinite(number) else None

    def integer(self, entry: _Entry | None) -> int | None:
        """The entry's first value when it is of an integer type."""
        if entry is None or entry.kind not in _INTEGER_TYPES:
            return None
        number = self.number(entry)
        return None if number is None else int(number)


def camera_details(exif: object, orientation: int | None) -> CameraDetails:
    """The camera details in `exif` (EXIF/TIFF bytes, with or without the "Exif" header)
    and the Orientation the container walk read; never raises."""
    tiff = _Tiff.of(exif) if isinstance(exif, bytes) else None
    oriented = orientation if orientation in range(1, 9) else None
    if tiff is None:
        return CameraDetails(orientation=oriented)
    ifd0 = _safely(lambda: _ifd0(tiff)) or {}
    sub = _safely(lambda: _exif_ifd(tiff, ifd0)) or {}
    return CameraDetails(
        camera_make=_safely(lambda: _text(ifd0.get(_MAKE))),
        camera_model=_safely(lambda: _text(ifd0.get(_MODEL))),
        lens=_safely(lambda: _lens(sub)),
        taken_at=_safely(lambda: _taken_at(ifd0, sub)),
        exposure_time=_safely(lambda: _within(tiff.number(sub.get(_EXPOSURE_TIME)), 86_400)),
        f_number=_safely(lambda: _within(tiff.number(sub.get(_F_NUMBER)), 1_000)),
        iso=_safely(lambda: _iso(tiff, sub)),
        focal_length=_safely(lambda: _within(tiff.number(sub.get(_FOCAL_LENGTH)), 10_000)),
        orientation=oriented,
    )


def _safely(read: Callable[[], T | None]) -> T | None:
    """`read()`, or None should a hostile value reach a case the parsers missed: one bad
    field never costs the others, nor the upload."""
    try:
        return read()
    except Exception:
        return None


def _ifd0(tiff: _Tiff) -> dict[int, _Entry]:
    offset = tiff.first_ifd()
    return {} if offset is None else tiff.entries(offset, _IFD0_TAGS)


def _exif_ifd(tiff: _Tiff, ifd0: dict[int, _Entry]) -> dict[int, _Entry]:
    pointer = ifd0.get(_EXIF_IFD)
    offset = tiff.integer(pointer) if pointer is not None and pointer.length == 1 else None
    return {} if offset is None else tiff.entries(offset, _EXIF_TAGS)


def _text(entry: _Entry | None) -> str | None:
    """A text field: UTF-8 up to its first NUL, without control characters, collapsed
    whitespace, at most `MAX_TEXT` characters; None when empty or not text."""
    if entry is None or entry.kind not in _TEXT_TYPES:
        return None
    raw = entry.value.split(b"\x00", 1)[0]
    try:  # not final: a character cut by `_MAX_TEXT_BYTES` is dropped, not an error
        decoded = codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
    except UnicodeDecodeError:
        return None
    if not decoded.isprintable():  # control and format characters go, whitespace stays
        decoded = "".join(c for c in decoded if c.isprintable() or c.isspace())
    text = " ".join(decoded.split())[:MAX_TEXT].rstrip()
    return text or None


def _lens(sub: dict[int, _Entry]) -> str | None:
    """LensModel, after LensMake when the model does not already name it."""
    model, make = _text(sub.get(_LENS_MODEL)), _text(sub.get(_LENS_MAKE))
    if model is None:
        return None
    if make is None or model.casefold().startswith(make.casefold()):
        return model
    return f"{make} {model}"[:MAX_TEXT]


def _taken_at(ifd0: dict[int, _Entry], sub: dict[int, _Entry]) -> str | None:
    """When the picture was taken: DateTimeOriginal, else DateTimeDigitized, else
    DateTime, each with its own offset tag when that is valid."""
    candidates = (
        (sub.get(_DATE_TIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL)),
        (sub.get(_DATE_TIME_DIGITIZED), sub.get(_OFFSET_TIME_DIGITIZED)),
        (ifd0.get(_DATE_TIME), sub.get(_OFFSET_TIME)),
    )
    for when, offset in candidates:
        local = _local_time(_text(when))
        if local is not None:
            return local + (_offset(_text(offset)) or "")
    return None


def _local_time(text: str | None) -> str | None:
    """EXIF's "2024:05:01 14:22:33" as "2024-05-01T14:22:33"; None unless a real moment."""
    found = _DATE.fullmatch(text or "")
    if found is None:
        return None
    year, month, day, hour, minute, second = map(int, found.groups())
    if not 1800 <= year <= 2200:
        return None
    try:
        return f"{date(year, month, day).isoformat()}T{time(hour, minute, second).isoformat()}"
    except ValueError:  # month 13, 31 February, hour 24
        return None


def _offset(text: str | None) -> str | None:
    """A UTC offset "+HH:MM" within the world's time zones (-12:00 to +14:00)."""
    found = _OFFSET.fullmatch(text or "")
    if found is None:
        return None
    hours, minutes = int(found[2]), int(found[3])
    if hours > 14 or minutes > 59 or (hours == 14 and minutes):
        return None
    return text


def _within(number: float | None, most: float) -> float | None:
    """`number` when it is positive and at most `most`."""
    return number if number is not None and 0 < number <= most else None


def _iso(tiff: _Tiff, sub: dict[int, _Entry]) -> int | None:
    """ISOSpeedRatings (PhotographicSensitivity); above 65,534 it saturates and the
    actual value is in ISOSpeed or RecommendedExposureIndex."""
    rated = tiff.integer(sub.get(_ISO_SPEED_RATINGS))
    if rated is not None and 0 < rated < 65_535:
        return rated
    more: Iterable[int | None] = (
        tiff.integer(sub.get(tag)) for tag in (_ISO_SPEED, _RECOMMENDED_EXPOSURE_INDEX)
    )
    found = next((iso for iso in more if iso is not None and 0 < iso <= 10_000_000), None)
    return found if found is not None else (rated if rated == 65_535 else None)
