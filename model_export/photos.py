"""Real photographs for parity checks, tests and the demo.

Prefers the COCO photos in ../shared/data (when the repo sits beside it); otherwise the real
photos that ship inside scikit-image, so a user's fresh clone still has something real.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
COCO_DIR = SHARED_DATA / "images" / "coco-val2017"
# Colour photographs bundled in the scikit-image wheel (no download needed).
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "camera.png",
)


def skimage_photos() -> list[Path]:
    try:
        import skimage
    except ImportError:
        return []
    data = Path(skimage.__file__).parent / "data"
    return [data / name for name in SKIMAGE_PHOTOS if (data / name).is_file()]


def coco_photos() -> list[Path]:
    return sorted(COCO_DIR.glob("*.jpg")) if COCO_DIR.is_dir() else []


def parity_photos(limit: int = 16) -> list[Path]:
    photos = coco_photos()[:limit] or skimage_photos()[:limit]
    if not photos:
        raise SystemExit(
            "no real photos found for the parity check: install scikit-image or place the repo beside shared/data"
        )
    return photos
