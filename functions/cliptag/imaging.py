"""Decoding photos and CLIP preprocessing with Pillow and numpy (no torch, no transformers).

``preprocess`` reproduces ``CLIPImageProcessor`` exactly on the reference path (resize the
shortest side with bicubic, centre crop, rescale, normalise); the parity test holds it to
1e-4. ``decode`` adds what a bucket of real photos needs first: limits checked before any
pixel is decoded, EXIF orientation, first frame of animations, CMYK/16-bit/palette to RGB,
HEIC/HEIF through pillow-heif, and JPEG draft mode (DCT scaling) for large camera photos.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from cliptag.errors import PermanentError

try:  # HEIC/HEIF from phones; optional so the domain still imports without it.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - the runtime layer always ships it
    pass

# Our own pixel cap (Limits.max_pixels, the MaxPixels parameter) is checked from the header, before
# any pixel is decoded; Pillow's global one would pre-empt it on bombs with its own number.
Image.MAX_IMAGE_PIXELS = None
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Preprocessing:
    """The model's preprocessing constants, as recorded in the model manifest: every model
    family's difference is data here (open_clip's PreprocessCfg, transformers' processor config)."""

    size: int = 224  # shortest edge after resize ("shortest"), or both edges ("squash")
    crop: int = 224  # the centre crop after a "shortest" resize; a "squash" has none (= size)
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    resample: int = 3  # PIL's filter: 3 BICUBIC (CLIP, open_clip), 2 BILINEAR
    resize: str = "shortest"  # "shortest" (aspect kept, then centre crop) | "squash" (to size x size)
    # Where an odd margin's extra pixel goes: "floor" ((h - crop) // 2, transformers) or "round"
    # (round((h - crop) / 2), half to even: torchvision's CenterCrop, which open_clip uses).
    crop_offset: str = "floor"

    @property
    def input_size(self) -> int:
        """The side of the square the image encoder takes."""
        return self.size if self.resize == "squash" else self.crop


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 100_000_000


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, upright, possibly already reduced by draft mode
    width: int  # original, upright dimensions
    height: int
    format: str


def decode(data: bytes, limits: Limits, draft_to: int | None = None) -> DecodedImage:
    """Open ``data`` as an upright RGB image or raise PermanentError with a clear reason.

    ``draft_to``: let the JPEG decoder scale by 1/2, 1/4 or 1/8 in the DCT while keeping the
    shortest side at least this many pixels (about 4x faster on a 12 MP photo).
    """
    if not data:
        raise PermanentError("empty object (0 bytes)")
    if len(data) > limits.max_bytes:
        raise PermanentError(f"object is {len(data)} bytes, over the {limits.max_bytes}-byte limit")
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        width, height = img.size
        if width * height > limits.max_pixels:
            raise PermanentError(
                f"image is {width}x{height} = {width * height:,} pixels, over the {limits.max_pixels:,}-pixel"
                " limit (MaxPixels): refused before decoding"
            )
        fmt = img.format or "unknown"
        if draft_to and fmt in ("JPEG", "MPO") and min(width, height) >= 2 * draft_to:
            scale = min(width, height) / draft_to
            img.draft("RGB", (int(width / scale), int(height / scale)))
        img.load()  # first frame only for GIF/WebP/MPO/TIFF
        quarter_turn = img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
        img = ImageOps.exif_transpose(img) or img
        upright_w, upright_h = (height, width) if quarter_turn else (width, height)
        return DecodedImage(image=to_rgb(img), width=upright_w, height=upright_h, format=fmt)
    except PermanentError:
        raise
    except UnidentifiedImageError as exc:
        raise PermanentError("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated or corrupt files surface as OSError ("image file is truncated") and friends.
        raise PermanentError(f"cannot decode image: {exc}") from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB; 16/32-bit greyscale is scaled rather than clipped to white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr: NDArray[np.float64] = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    return img if img.mode == "RGB" else img.convert("RGB")


def resize_shortest_edge(img: Image.Image, size: int, resample: int) -> Image.Image:
    """Shortest side to ``size``, aspect kept; the long side truncates as transformers does."""
    w, h = img.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) == (w, h):
        return img
    return img.resize((new_w, new_h), resample=Image.Resampling(resample))


def center_crop(img: Image.Image, crop: int, offset: str = "floor") -> Image.Image:
    w, h = img.size
    if w < crop or h < crop:  # tiny inputs: pad with black like transformers' center_crop
        canvas = Image.new("RGB", (max(w, crop), max(h, crop)))
        canvas.paste(img, ((max(w, crop) - w) // 2, (max(h, crop) - h) // 2))
        img, (w, h) = canvas, canvas.size
    if offset == "round":
        top, left = round((h - crop) / 2), round((w - crop) / 2)  # half to even, as Python rounds
    else:
        top, left = (h - crop) // 2, (w - crop) // 2
    return img.crop((left, top, left + crop, top + crop))


def resized(img: Image.Image, prep: Preprocessing) -> Image.Image:
    """The model's resize (and crop): the square image its encoder takes."""
    if prep.resize == "squash":
        size = (prep.size, prep.size)
        return img if img.size == size else img.resize(size, resample=Image.Resampling(prep.resample))
    return center_crop(resize_shortest_edge(img, prep.size, prep.resample), prep.crop, prep.crop_offset)


def preprocess(img: Image.Image, prep: Preprocessing) -> NDArray[np.float32]:
    """RGB image -> normalised CHW float32 tensor of shape [3, input_size, input_size]."""
    img = resized(to_rgb(img), prep)
    scaled: NDArray[np.float32] = np.asarray(img, dtype=np.float32) * np.float32(1.0 / 255.0)
    normalised = (scaled - np.asarray(prep.mean, dtype=np.float32)) / np.asarray(prep.std, dtype=np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)


def load_pixels(
    data: bytes, prep: Preprocessing, limits: Limits, fast: bool = True
) -> tuple[DecodedImage, NDArray[np.float32]]:
    """Decode and preprocess in one step; ``fast`` enables JPEG draft decoding."""
    decoded = decode(data, limits, draft_to=2 * prep.size if fast else None)
    return decoded, preprocess(decoded.image, prep)
