"""JPEGs carrying the GPS EXIF a test asks for, hostile values included (written with Pillow)."""

from __future__ import annotations

import io
from typing import Any

from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

GPS_IFD = ExifTags.IFD.GPSInfo


def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Degrees as EXIF writes them: three rationals, degrees, minutes, seconds (1/10,000 s)."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10_000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10_000)


def gps_ifd(latitude: float, longitude: float) -> dict[int, Any]:
    """A well-formed GPS IFD (tags 1-4) for a position."""
    return {
        1: "N" if latitude >= 0 else "S",
        2: dms(latitude),
        3: "E" if longitude >= 0 else "W",
        4: dms(longitude),
    }


def with_gps(photo: bytes, gps: dict[int, Any] | None) -> bytes:
    """``photo`` re-encoded as a JPEG whose EXIF holds ``gps`` as its GPS IFD (None: no GPS)."""
    with Image.open(io.BytesIO(photo)) as img:
        exif = Image.Exif()
        exif[ExifTags.Base.Make] = "cliptag test"
        if gps is not None:
            exif[GPS_IFD] = gps
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=90, exif=exif)
        return out.getvalue()


def plain_jpeg(colour: str = "steelblue", size: tuple[int, int] = (96, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()
