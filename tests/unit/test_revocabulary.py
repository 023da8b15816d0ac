"""A new vocabulary for an exported model directory, without PyTorch, equal to the PyTorch path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TOKENIZER_DIR, require

VOCABULARY = """
templates: ["a photo of a {}.", "a close-up photo of the {}."]
tags:
  animal:
    - dog
    - {name: cat, synonyms: [kitten], descriptions: ["a small furry pet with whiskers"]}
  place: [beach, forest, city]
"""


def test_revocabulary_matches_the_pytorch_tag_embeddings(model_dir: Path, tmp_path: Path):
    pytest.importorskip("torch", reason="the PyTorch reference needs the export extra (make venv)")
    require(TOKENIZER_DIR)
    from cliptag.bundle import ModelBundle
    from cliptag.scoring import l2_normalise
    from cliptag.text import TextEncoder

    from model_export.checkpoint import load_checkpoint
    from model_export.cli import main
    from model_export.onnx_export import torch_text_embeds
    from model_export.tag_embeddings import prompts_for

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    before = ModelBundle.open(copy)
    (tmp_path / "mine.yaml").write_text(VOCABULARY, "utf-8")
    assert (
        main(["vocabulary", "--model-dir", str(copy), "--vocabulary", str(tmp_path / "mine.yaml"), "--no-progress"])
        == 0
    )

    after = ModelBundle.open(copy)  # the loader checks every hash it depends on
    assert after.vocabulary.names == ["dog", "cat", "beach", "forest", "city"]
    assert after.model_key == before.model_key, "the image encoder (and so stored embeddings) must not change"
    assert after.tag_embeddings.shape == (5, before.embed_dim)

    # The PyTorch path: the same checkpoint's text tower on the same prompts, ensembled the same way.
    seed = int(before.manifest["model"].get("seed", 0)) if isinstance(before.manifest["model"], dict) else 0
    ckpt = load_checkpoint("tiny", None, TOKENIZER_DIR, tmp_path / "work", seed=seed)
    manifest = after.manifest
    tokens = TextEncoder(copy / manifest["text_encoder"]["file"], copy / manifest["tokenizer"]["file"])
    reference = []
    for tag in after.vocabulary.tags:
        ids = tokens.token_ids(prompts_for(tag, after.vocabulary.templates))
        reference.append(l2_normalise(np.asarray(torch_text_embeds(ckpt.model, ids), np.float32)).mean(axis=0))
    cosines = np.sum(l2_normalise(np.stack(reference)) * after.tag_embeddings, axis=1)
    assert cosines.min() >= 0.9999, cosines


def test_a_bad_vocabulary_changes_nothing(model_dir: Path, tmp_path: Path, capsys):
    from model_export.cli import main

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    manifest = (copy / "manifest.json").read_bytes()
    (tmp_path / "bad.yaml").write_text("tags:\n  animal: [dog, Dog]\n", "utf-8")
    assert main(["vocabulary", "--model-dir", str(copy), "--vocabulary", str(tmp_path / "bad.yaml")]) == 1
    assert "duplicate" in capsys.readouterr().err.lower()
    assert (copy / "manifest.json").read_bytes() == manifest


def test_a_copy_of_the_default_with_one_tag_edited_changes_only_that_tags_row(model_dir: Path, tmp_path: Path, capsys):
    """The user's path: copy default.yaml (not its companion), edit one tag, re-vocabulary. The
    other tags take the default's descriptions, so they keep their rows bit for bit and a re-tag
    changes only the edited tag's scores."""
    from cliptag.bundle import ModelBundle

    from model_export.cli import main
    from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    default = load_vocabulary(DEFAULT_VOCABULARY, quiet=True)
    if ModelBundle.open(copy).vocabulary.hash != default.hash:  # a test model exported otherwise
        assert main(["vocabulary", "--model-dir", str(copy), "--vocabulary", str(DEFAULT_VOCABULARY)]) == 0
    before = ModelBundle.open(copy)
    rows, vocabulary = before.tag_embeddings, before.vocabulary  # read now: the files are replaced below
    text = DEFAULT_VOCABULARY.read_text("utf-8")
    edit = ("{name: dog, synonyms: [puppy, canine]}", "{name: dog, synonyms: [puppy, canine, doggo]}")
    assert text.count(edit[0]) == 1
    (tmp_path / "my-tags.yaml").write_text(text.replace(*edit), "utf-8")
    capsys.readouterr()
    args = ["vocabulary", "--model-dir", str(copy), "--vocabulary", str(tmp_path / "my-tags.yaml"), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1,620 of 1,620 tags take their descriptions from the default vocabulary's companion" in out
    assert "1619 tags kept their embeddings, 1 embedded" in out

    after = ModelBundle.open(copy)
    assert after.vocabulary.names == vocabulary.names
    assert after.vocabulary.version != vocabulary.version
    differ = np.flatnonzero(np.any(after.tag_embeddings != rows, axis=1))
    assert [after.vocabulary.names[i] for i in differ] == ["dog"]
    dog = after.vocabulary.names.index("dog")
    assert after.vocabulary.tags[dog].descriptions == default.tags[dog].descriptions  # still described

    # Without the default's descriptions every row would change: the loud warning says so.
    assert main([*args, "--no-default-descriptions"]) == 0
    captured = capsys.readouterr()
    assert "WARNING: 1,620 of 1,620 tags of my-tags.yaml are default tags" in captured.err
    assert "0 tags kept their embeddings, 1620 embedded" in captured.out
