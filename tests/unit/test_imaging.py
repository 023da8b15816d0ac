"""Decoding real and awkward files: upright, RGB, limits enforced before decoding."""

import io

import numpy as np
import pytest
from cliptag.errors import PermanentError
from cliptag.imaging import Limits, Preprocessing, decode, load_pixels, preprocess
from PIL import Image

from tests.conftest import FORMATS, require

LIMITS = Limits()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(9))
@pytest.mark.parametrize("shape", ["Landscape", "Portrait"])
def test_exif_orientations_come_out_upright(shape, orientation):
    folder = require(FORMATS / "exif-orientation")
    reference = decode((folder / f"{shape}_1.jpg").read_bytes(), LIMITS)
    got = decode((folder / f"{shape}_{orientation}.jpg").read_bytes(), LIMITS)
    assert got.image.size == reference.image.size
    assert (got.width, got.height) == (reference.width, reference.height)
    diff = np.abs(np.asarray(got.image, dtype=np.float32) - np.asarray(reference.image, dtype=np.float32)).mean()
    assert diff < 10, f"{shape}_{orientation} is not upright (mean abs diff {diff:.1f})"


@pytest.mark.parametrize(
    "name",
    [
        "heic/IMG_5195.HEIC",
        "heic/samplefilehub.heif",
        "misc/hopper.avif",
        "misc/flower.webp",
        "misc/hopper.gif",
        "misc/hopper.tif",
        "misc/hopper.png",
        "misc/frozenpond.mpo",
        "misc/sample_cmyk.jpg",
        "misc/xmp_test.jpg",
        "misc/hopper_orientation_6.jpg",
    ],
)
def test_real_formats_decode_to_rgb(name):
    data = require(FORMATS / name).read_bytes()
    decoded, pixels = load_pixels(data, Preprocessing(), LIMITS)
    assert decoded.image.mode == "RGB"
    assert pixels.shape == (3, 224, 224) and pixels.dtype == np.float32 and np.isfinite(pixels).all()


def test_orientation_6_swaps_reported_dimensions():
    data = require(FORMATS / "misc" / "hopper_orientation_6.jpg").read_bytes()
    raw = Image.open(io.BytesIO(data))
    decoded = decode(data, LIMITS)
    assert (decoded.width, decoded.height) == (raw.size[1], raw.size[0])


@pytest.mark.parametrize(
    ("name", "reason"),
    [("misc/truncated_jpeg.jpg", "cannot decode"), ("misc/decompression_bomb.gif", "pixel")],
)
def test_hostile_files_fail_with_a_reason(name, reason):
    data = require(FORMATS / name).read_bytes()
    with pytest.raises(PermanentError, match=reason):
        decode(data, LIMITS)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "0 bytes"), (b"hello, I am a text file pretending to be a jpg\n", "not a recognised image")],
)
def test_non_images_fail_with_a_reason(data, reason):
    with pytest.raises(PermanentError, match=reason):
        decode(data, LIMITS)


def test_pixel_limit_is_checked_before_decoding():
    big = png_bytes(Image.new("RGB", (3000, 2000)))
    with pytest.raises(PermanentError, match="pixel limit"):
        decode(big, Limits(max_pixels=5_000_000))


def test_byte_limit():
    with pytest.raises(PermanentError, match="byte limit"):
        decode(b"x" * 101, Limits(max_bytes=100))


def test_bmp_decodes():
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(buf, format="BMP")
    decoded, _ = load_pixels(buf.getvalue(), Preprocessing(), LIMITS)
    assert decoded.format == "BMP" and (decoded.width, decoded.height) == (300, 200)


def test_one_pixel_and_16_bit_and_palette_images_work():
    for img in (
        Image.new("RGB", (1, 1), (200, 10, 10)),
        Image.new("I;16", (64, 48), 40000),
        Image.new("P", (40, 40)),
    ):
        _, pixels = load_pixels(png_bytes(img), Preprocessing(), LIMITS)
        assert pixels.shape == (3, 224, 224)
    grey16 = decode(png_bytes(Image.new("I;16", (8, 8), 65535)), LIMITS).image
    assert np.asarray(grey16).min() == 255  # full-scale 16-bit is white, not clipped garbage


def test_preprocess_normalises_with_model_constants():
    prep = Preprocessing()
    pixels = preprocess(Image.new("RGB", (300, 500), (255, 255, 255)), prep)
    expected = (1.0 - np.array(prep.mean)) / np.array(prep.std)
    assert np.allclose(pixels[:, 0, 0], expected, atol=1e-6)


@pytest.mark.parametrize("shape", ["Landscape", "Portrait"])
def test_exif_orientations_give_the_upright_originals_embedding(shape, model_dir):
    """What tags are computed from: the embedding of each orientation 1-8 matches the upright
    original (orientation 0, no EXIF), and beats the same pixels left as stored."""
    from cliptag.bundle import ModelBundle
    from cliptag.encoder import ImageEncoder
    from cliptag.imaging import to_rgb

    folder = require(FORMATS / "exif-orientation")
    bundle = ModelBundle.open(model_dir)
    encoder = ImageEncoder(bundle.image_encoder_path())

    def embed(pixels: np.ndarray) -> np.ndarray:
        return encoder.embed(pixels[None])[0]

    upright = embed(load_pixels((folder / f"{shape}_0.jpg").read_bytes(), bundle.preprocessing, LIMITS)[1])
    for orientation in range(1, 9):
        data = (folder / f"{shape}_{orientation}.jpg").read_bytes()
        ours = float(embed(load_pixels(data, bundle.preprocessing, LIMITS)[1]) @ upright)
        assert ours >= 0.999, f"{shape}_{orientation}: cosine {ours:.4f} with the upright original"
        if orientation >= 2:  # stored rotated or mirrored: ignoring EXIF would embed another picture
            as_stored = float(embed(preprocess(to_rgb(Image.open(io.BytesIO(data))), bundle.preprocessing)) @ upright)
            assert ours > as_stored, f"{shape}_{orientation}: {ours:.5f} vs {as_stored:.5f} without EXIF"


def test_a_decompression_bomb_is_refused_against_max_pixels_not_pillows_limit():
    from cliptag.imaging import decode as decode_image

    data = require(FORMATS / "misc" / "decompression_bomb.gif").read_bytes()
    with pytest.raises(PermanentError) as refused:
        decode_image(data, Limits(max_pixels=5_000_000))
    reason = str(refused.value)
    assert "5,000,000-pixel limit (MaxPixels)" in reason and "65535x66601" in reason
    assert "2000000000" not in reason and "2,000,000,000" not in reason
