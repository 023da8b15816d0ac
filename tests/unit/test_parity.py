"""Our preprocessing and tokenizer against transformers' own, on real data."""

import numpy as np
import pytest
from cliptag.encoder import ImageEncoder
from cliptag.imaging import Limits, Preprocessing, decode, load_pixels, preprocess
from PIL import Image

from model_export import parity
from tests.conftest import COCO, TOKENIZER_DIR, real_photos, require

transformers = pytest.importorskip("transformers", reason="parity tests need the export extra")


def test_preprocessing_matches_clip_image_processor_on_real_photos():
    require(TOKENIZER_DIR / "preprocessor_config.json")
    photos = real_photos(24)
    report = parity.preprocessing_parity(photos, Preprocessing(), TOKENIZER_DIR)
    assert report["max_abs_diff"] <= 1e-4, report


def test_tokenizer_ids_match_clip_tokenizer():
    require(TOKENIZER_DIR / "tokenizer.json")
    from model_export.tag_embeddings import all_prompts
    from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary

    prompts = all_prompts(load_vocabulary(DEFAULT_VOCABULARY))
    report = parity.tokenizer_parity(TOKENIZER_DIR / "tokenizer.json", TOKENIZER_DIR, prompts)
    assert report["mismatches"] == 0, report["examples"]
    assert report["texts"] > 10_000


def test_long_text_is_cut_to_77_tokens_with_end_marker():
    require(TOKENIZER_DIR / "tokenizer.json")
    from cliptag.text import configure_clip_tokenizer
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))
    configure_clip_tokenizer(tok)
    ids = tok.encode(" ".join(["word"] * 200)).ids
    assert len(ids) == 77 and ids[0] == 49406 and ids[-1] == 49407


def test_draft_decoding_keeps_embeddings_close_on_large_photos(model_dir):
    """JPEG draft mode (DCT scaling) must not change what the model sees in any way that matters."""
    from cliptag.bundle import ModelBundle

    require(COCO)
    bundle = ModelBundle.open(model_dir)
    encoder = ImageEncoder(bundle.image_encoder_path())
    limits = Limits()
    cosines = []
    for path in real_photos(8):
        # Upscale to a 12 MP-class JPEG so draft mode really engages.
        img = decode(path.read_bytes(), limits).image.resize((4000, 3000), Image.Resampling.BICUBIC)
        import io

        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=92)
        _, fast = load_pixels(buf.getvalue(), bundle.preprocessing, limits, fast=True)
        reference = preprocess(decode(buf.getvalue(), limits).image, bundle.preprocessing)
        a, b = encoder.embed(np.stack([fast, reference]))
        cosines.append(float(a @ b))
    assert min(cosines) >= 0.995, cosines
