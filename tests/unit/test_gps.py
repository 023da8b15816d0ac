"""A photo's GPS position from its EXIF: what a third-party reader (exiftool) reads, and a clear
reason, never an exception, for every value that cannot be right."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cliptag.gps import Position, position_of
from PIL.TiffImagePlugin import IFDRational

from tests.exif import dms, gps_ifd, plain_jpeg, with_gps

LANDMARKS = {  # (latitude, longitude): one per hemisphere pair
    "eiffel tower": (48.858370, 2.294481),
    "statue of liberty": (40.689247, -74.044502),
    "sydney opera house": (-33.856784, 151.215297),
    "christ the redeemer": (-22.951916, -43.210487),
}


@pytest.mark.parametrize("name", sorted(LANDMARKS))
def test_the_position_is_what_exiftool_reads(name: str, tmp_path: Path) -> None:
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool not installed (Debian: libimage-exiftool-perl)")
    data = with_gps(plain_jpeg(), gps_ifd(*LANDMARKS[name]))
    (path := tmp_path / "photo.jpg").write_bytes(data)
    out = subprocess.run([exiftool, "-n", "-j", "-GPSLatitude", "-GPSLongitude", str(path)], capture_output=True)
    read = json.loads(out.stdout)[0]
    found = position_of(data)
    assert isinstance(found, Position), found
    assert found.latitude == pytest.approx(read["GPSLatitude"], abs=1e-6)
    assert found.longitude == pytest.approx(read["GPSLongitude"], abs=1e-6)
    assert found.latitude == pytest.approx(LANDMARKS[name][0], abs=1e-5)  # the writer's 1/10,000 s


def test_degrees_and_decimal_minutes_as_the_exif_standard_writes_them() -> None:
    # EXIF 2.3, GPSLatitude: "When degrees and minutes are used and, for example, fractions of
    # minutes are given up to two decimal places, the format is dd/1,mmmm/100,0/1."
    gps = {1: "N", 2: (IFDRational(48, 1), IFDRational(5130, 100), IFDRational(0, 1)), 3: "W"}
    gps[4] = (IFDRational(2, 1), IFDRational(1750, 100), IFDRational(0, 1))
    assert position_of(with_gps(plain_jpeg(), gps)) == Position(48.855, -2.291667)


NAN = IFDRational(0, 0)
HOSTILE: dict[str, tuple[dict[int, Any] | None, str]] = {
    "no EXIF GPS": (None, "no GPS position"),
    "NaN latitude (0/0)": ({**gps_ifd(48.85, 2.29), 2: (NAN, IFDRational(0, 1), IFDRational(0, 1))}, "not a number"),
    "zero denominator in the minutes": (
        {**gps_ifd(48.85, 2.29), 4: (IFDRational(2, 1), IFDRational(17, 0), IFDRational(0, 1))},
        "zero denominator",
    ),
    "latitude over 90°": ({**gps_ifd(48.85, 2.29), 2: dms(95.0)}, "out of range"),
    "longitude over 180°": ({**gps_ifd(48.85, 2.29), 4: dms(181.5)}, "out of range"),
    "75 minutes": (
        {**gps_ifd(48.85, 2.29), 2: (IFDRational(48, 1), IFDRational(75, 1), IFDRational(0, 1))},
        "out of range",
    ),
    "no latitude reference": ({k: v for k, v in gps_ifd(48.85, 2.29).items() if k != 1}, "no hemisphere"),
    "no longitude reference": ({k: v for k, v in gps_ifd(48.85, 2.29).items() if k != 3}, "no hemisphere"),
    "a reference that is no hemisphere": ({**gps_ifd(48.85, 2.29), 3: "Q"}, "no hemisphere"),
    "no longitude": ({k: v for k, v in gps_ifd(48.85, 2.29).items() if k != 4}, "longitude missing"),
    "0°N 0°E": (gps_ifd(0.0, 0.0), "without a fix"),
    "measurement void": ({**gps_ifd(48.85, 2.29), 9: "V"}, "void"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_value_that_cannot_be_right_is_a_reason(case: str) -> None:
    gps, reason = HOSTILE[case]
    found = position_of(with_gps(plain_jpeg(), gps))
    assert isinstance(found, str) and reason in found, found


@pytest.mark.parametrize("data", [b"", b"not an image", plain_jpeg()[:40], with_gps(plain_jpeg(), gps_ifd(1, 1))[:120]])
def test_unreadable_bytes_are_a_reason_too(data: bytes) -> None:
    assert isinstance(position_of(data), str)
