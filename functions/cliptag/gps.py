"""A photo's GPS position from its EXIF, or the reason there is none (Pillow only, no pixel decoded).

The bytes are untrusted: every value is checked before it is believed. A position needs both
coordinates as three finite, non-negative rationals (degrees, minutes, seconds: a zero
denominator is NaN), minutes and seconds under 60, a hemisphere reference (N/S, E/W: without it
the sign is a guess, so no position), and a result inside the globe's range. 0°N 0°E, where
cameras without a fix write zeros, is no position either. Nothing here raises.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image

_GPS_IFD = ExifTags.IFD.GPSInfo
_LATITUDE_REF, _LATITUDE, _LONGITUDE_REF, _LONGITUDE, _STATUS = 1, 2, 3, 4, 9


@dataclass(frozen=True)
class Position:
    latitude: float  # degrees, north positive
    longitude: float  # degrees, east positive


def position_of(data: bytes) -> Position | str:
    """The GPS position in ``data``'s EXIF, or why there is none (a sentence for the record)."""
    try:
        with Image.open(io.BytesIO(data)) as img:  # the header only: no pixel is decoded
            gps = dict(img.getexif().get_ifd(_GPS_IFD))
    except Exception as exc:  # any failure to read EXIF is a reason, never a crash
        return f"EXIF unreadable: {type(exc).__name__}"
    if not gps:
        return "no GPS position in EXIF"
    return from_gps_ifd(gps)


def from_gps_ifd(gps: Mapping[int, Any]) -> Position | str:
    """A position from a GPS IFD's tags (tag number -> value as Pillow reads it)."""
    if _text(gps.get(_STATUS)) == "V":  # GPSStatus "V": measurement void
        return "GPS says its measurement is void (GPSStatus V)"
    latitude = _coordinate(gps, _LATITUDE, _LATITUDE_REF, "NS", 90.0, "latitude")
    if isinstance(latitude, str):
        return latitude
    longitude = _coordinate(gps, _LONGITUDE, _LONGITUDE_REF, "EW", 180.0, "longitude")
    if isinstance(longitude, str):
        return longitude
    if latitude == 0.0 and longitude == 0.0:
        return "GPS position is 0°N 0°E (a camera without a fix)"
    return Position(round(latitude, 6), round(longitude, 6))


def _coordinate(
    gps: Mapping[int, Any], tag: int, ref_tag: int, hemispheres: str, limit: float, name: str
) -> float | str:
    value, ref = gps.get(tag), _text(gps.get(ref_tag)).upper()
    if value is None:
        return f"GPS {name} missing"
    if len(ref) != 1 or ref not in hemispheres:  # absent, or anything but the two letters
        return f"GPS {name} has no hemisphere reference ({hemispheres[0]}/{hemispheres[1]})"
    parts = _numbers(value)
    if parts is None:
        return f"GPS {name} is not three numbers"
    if not all(math.isfinite(p) for p in parts):
        return f"GPS {name} is not a number (NaN or a zero denominator)"
    degrees, minutes, seconds = parts
    if min(parts) < 0 or minutes >= 60 or seconds >= 60:
        return f"GPS {name} out of range ({degrees:g}° {minutes:g}' {seconds:g}\")"
    total = degrees + minutes / 60 + seconds / 3600
    if total > limit:
        return f"GPS {name} out of range ({total:g}° > {limit:g}°)"
    return -total if ref == hemispheres[1] else total


def _numbers(value: Any) -> tuple[float, float, float] | None:
    """Three floats from a (d, m, s) sequence; a lone number counts as degrees."""
    if isinstance(value, str | bytes):
        return None
    items = tuple(value) if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(items) <= 3:
        return None
    try:
        floats = [float(v) for v in items]
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    while len(floats) < 3:
        floats.append(0.0)
    return floats[0], floats[1], floats[2]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ").strip() if isinstance(value, str) else ""
