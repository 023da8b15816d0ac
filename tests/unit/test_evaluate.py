"""The accuracy harness: metrics with known answers, calibration, label loaders, and end-to-end runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from model_export.evaluation.calibrate import calibrate, lowest_threshold, vocabulary_yaml
from model_export.evaluation.labels import (
    COCO_MAPPING,
    LabelsError,
    load_coco_panoptic,
    load_csv,
    load_folder,
    load_mapping,
)
from model_export.evaluation.metrics import average_precision, mean_ap, precision_recall_f1
from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary
from tests.conftest import COCO, ROOT, require

VOCABULARY = ["dog", "cat", "beach", "hot dog"]


# -- metrics ---------------------------------------------------------------------------------


def test_a_perfect_ranking_has_map_1():
    rng = np.random.default_rng(0)
    truth = rng.random((300, 40)) < 0.2
    scores = truth + rng.uniform(0, 0.9, truth.shape)  # every positive above every negative
    assert mean_ap(scores, truth) == pytest.approx(1.0)


def test_a_random_ranking_has_map_near_the_positive_rate():
    rng = np.random.default_rng(1)
    truth = rng.random((2000, 200)) < 0.1
    scores = rng.random(truth.shape)
    assert mean_ap(scores, truth) == pytest.approx(truth.mean(), abs=0.015)


def test_average_precision_by_hand():
    # ranks 1 and 3 are positives: (1/1 + 2/3) / 2
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0], bool)) == pytest.approx(5 / 6)


def test_tied_scores_count_together_whatever_their_order():
    truth = np.array([1, 0, 0, 1, 0], bool)
    assert average_precision(np.full(5, 0.3), truth) == pytest.approx(0.4)  # one threshold: precision 2/5
    assert average_precision(np.full(5, 0.3), truth[::-1]) == pytest.approx(0.4)


def test_tags_without_positives_are_left_out_of_the_map():
    truth = np.array([[1, 0], [0, 0], [1, 0]], bool)
    scores = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.5]])
    assert np.isnan(average_precision(scores[:, 1], truth[:, 1]))
    assert mean_ap(scores, truth) == pytest.approx(1.0)


def test_precision_recall_f1_by_hand():
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]], bool)  # the third tag has no positive
    predicted = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0]], bool)
    got = precision_recall_f1(predicted, truth)
    # tag 0: P 1/1 R 1/2 F1 2/3; tag 1: P 1/2 R 1/2 F1 1/2; tag 2: one false positive, no positives
    assert got["micro_precision"] == pytest.approx(2 / 4)
    assert got["micro_recall"] == pytest.approx(2 / 4)
    assert got["micro_f1"] == pytest.approx(0.5)
    assert got["macro_precision"] == pytest.approx(0.75)
    assert got["macro_recall"] == pytest.approx(0.5)
    assert got["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_nothing_predicted_means_zero_not_a_division_error():
    truth = np.array([[1, 0], [0, 1]], bool)
    got = precision_recall_f1(np.zeros_like(truth), truth)
    assert got["micro_precision"] == got["macro_f1"] == 0.0


# -- calibration -----------------------------------------------------------------------------


def test_calibration_picks_the_lowest_threshold_reaching_the_target():
    # precision by threshold: 0.9 1/1, 0.8 2/2, 0.7 2/3, 0.6 3/4, 0.5 3/5, 0.4 4/6
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], np.float32)
    truth = np.array([1, 1, 0, 1, 0, 1], bool)
    assert lowest_threshold(scores, truth, 0.75) == (pytest.approx(0.6), pytest.approx(0.75), pytest.approx(0.75))
    assert lowest_threshold(scores, truth, 0.7) == (pytest.approx(0.6), pytest.approx(0.75), pytest.approx(0.75))
    assert lowest_threshold(scores, truth, 0.6) == (pytest.approx(0.4), pytest.approx(4 / 6), pytest.approx(1.0))
    assert lowest_threshold(scores, truth, 1.0) == (pytest.approx(0.8), pytest.approx(1.0), pytest.approx(0.5))


def test_a_calibrated_threshold_never_rounds_above_the_score_that_set_it():
    for score in np.array([0.7, 0.123456789, -0.3333333, 0.2500005], np.float32):  # 0.7 is 0.69999999 as float32
        found = lowest_threshold(np.array([score]), np.array([True]), 1.0)
        assert found is not None
        assert np.float32(found[0]) <= score and score - found[0] < 2e-6


def test_calibration_respects_min_positives_and_leaves_the_fallback():
    scores = np.array([[0.9, 0.9, 0.2], [0.8, 0.1, 0.1], [0.7, 0.2, 0.3], [0.6, 0.3, 0.4], [0.1, 0.4, 0.5]], np.float32)
    truth = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0]], bool)
    got = {c.tag: c for c in calibrate(scores, truth, ("a", "b", "c"), target=0.7, min_positives=2)}
    assert got["a"].threshold == pytest.approx(0.6) and got["a"].positives == 3  # 3 of 4 >= 0.7
    assert got["b"].threshold is None and "fewer than 2" in got["b"].note  # one positive: keeps the default
    assert got["c"].threshold is None and got["c"].note == "target unreached"  # best precision is 2/3


def test_the_calibrated_vocabulary_reads_back_to_the_same_hash(tmp_path: Path):
    from model_export.evaluation.calibrate import with_thresholds

    vocab = with_thresholds(load_vocabulary(DEFAULT_VOCABULARY), {"dog": 0.251234, "beach": -0.5})
    (tmp_path / "v.yaml").write_text(vocabulary_yaml(vocab), "utf-8")
    again = load_vocabulary(tmp_path / "v.yaml")
    assert again.hash == vocab.hash
    assert again.tags[again.names.index("dog")].threshold == 0.251234


# -- labels ----------------------------------------------------------------------------------


def _photo(path: Path, colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), colour).save(path)
    return path


def test_the_csv_loader(tmp_path: Path):
    _photo(tmp_path / "img" / "a.jpg", (200, 0, 0))
    _photo(tmp_path / "img" / "b.png", (0, 200, 0))
    (tmp_path / "labels.csv").write_text(
        "path,tags\nimg/a.jpg,Dog; beach\nimg/b.png,\nimg/a.jpg,hot dog\n", "utf-8"
    )  # a second row adds tags; no tags: a negative for everything
    got = load_csv(tmp_path / "labels.csv", VOCABULARY)
    assert [p.name for p in got.photos] == ["a.jpg", "b.png"]
    assert got.tags == ("beach", "dog", "hot dog")
    assert got.truth.tolist() == [[True, True, True], [False, False, False]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,labels\nimg/a.jpg,dog\n", "header"),
        ("path,tags\nimg/a.jpg,dog;unicorn\n", "unicorn"),
        ("path,tags\nimg/missing.jpg,dog\n", "line 2"),
    ],
)
def test_the_csv_loader_says_what_is_wrong(tmp_path: Path, text: str, message: str):
    _photo(tmp_path / "img" / "a.jpg", (200, 0, 0))
    (tmp_path / "labels.csv").write_text(text, "utf-8")
    with pytest.raises(LabelsError, match=message):
        load_csv(tmp_path / "labels.csv", VOCABULARY)


def test_the_folder_loader_joins_copies_of_one_photo(tmp_path: Path):
    both = _photo(tmp_path / "dog" / "x.jpg", (10, 20, 30))
    (tmp_path / "beach").mkdir()
    shutil.copy(both, tmp_path / "beach" / "renamed.jpg")  # one photo, two tags
    _photo(tmp_path / "dog" / "y.jpg", (90, 90, 90))
    (tmp_path / "dog" / "notes.txt").write_text("not a photo")
    got = load_folder(tmp_path, VOCABULARY)
    assert got.tags == ("beach", "dog")
    rows = {p.name: t for p, t in zip(got.photos, got.truth.tolist(), strict=True)}
    assert rows == {"renamed.jpg": [True, True], "y.jpg": [False, True]}

    (tmp_path / "unicorn").mkdir()
    with pytest.raises(LabelsError, match="unicorn"):
        load_folder(tmp_path, VOCABULARY)


def test_the_coco_mapping_names_only_tags_of_the_default_vocabulary():
    names = load_vocabulary(DEFAULT_VOCABULARY, descriptions=False).names
    table = yaml.safe_load(COCO_MAPPING.read_text("utf-8"))["categories"]
    assert len(table) == 133
    tags = {t for v in table.values() if v for t in ([v] if isinstance(v, str) else v)}
    assert tags <= set(names), tags - set(names)
    if (COCO / "panoptic_val2017.json").is_file():  # and it covers every panoptic category
        doc = json.loads((COCO / "panoptic_val2017.json").read_text("utf-8"))
        load_mapping(COCO_MAPPING, [c["name"] for c in doc["categories"]], names)


def test_a_mapping_missing_a_category_or_naming_an_unknown_tag_is_refused(tmp_path: Path):
    (tmp_path / "m.yaml").write_text("categories:\n  dog: dog\n  kitten: unicorn\n", "utf-8")
    with pytest.raises(LabelsError, match="not mapped"):
        load_mapping(tmp_path / "m.yaml", ["dog", "cat"], VOCABULARY)
    with pytest.raises(LabelsError, match="unicorn"):
        load_mapping(tmp_path / "m.yaml", ["dog", "kitten"], VOCABULARY)


def test_coco_panoptic_labels():
    require(COCO / "panoptic_val2017.json")
    got = load_coco_panoptic(vocabulary=load_vocabulary(DEFAULT_VOCABULARY, descriptions=False).names)
    assert len(got.photos) == 100 and all(p.is_file() for p in got.photos)
    assert 3 <= got.truth.sum(axis=1).mean() <= 10  # about 6 labels a photo, fewer after merging
    assert "person" in got.tags and "sports ball" in got.unmapped


def test_without_the_shared_data_the_default_set_says_what_to_do(tmp_path: Path):
    with pytest.raises(LabelsError, match="--labels"):
        load_coco_panoptic(tmp_path / "shared" / "panoptic_val2017.json")


# -- end to end, on the tiny random-weights model --------------------------------------------


def _evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_export", "evaluate", "--no-progress", "--threads", "1", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_evaluate_on_coco_photos(model_dir: Path, tmp_path: Path):
    require(COCO / "panoptic_val2017.json")
    done = _evaluate("--model-dir", str(model_dir), "--limit", "8", "--json", str(tmp_path / "report.json"))
    assert done.returncode == 0, done.stderr
    assert "random weights" in done.stdout and "mAP" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text("utf-8"))
    assert report["labels"]["photos"] == 8 and report["model"]["random"]
    assert 0.0 <= report["metrics"]["map"] <= 1.0
    assert {a["name"] for a in report["ablations"]} == {
        "6 templates + descriptions",
        "6 templates, no descriptions",
        "1 template + descriptions",
        "1 template, no descriptions",
    }
    encoders = {e["quantization"]: e for e in report["encoders"]}
    assert encoders["fp32"]["map_change_vs_fp32"] == 0.0 and encoders["fp32"]["top5_agreement_vs_fp32"] == 1.0
    assert sum(e["shipped"] for e in encoders.values()) == 1


def test_evaluate_on_a_csv_of_my_photos(model_dir: Path, tmp_path: Path):
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]):
        _photo(tmp_path / f"p{i}.jpg", colour)
    (tmp_path / "labels.csv").write_text("path,tags\np0.jpg,dog\np1.jpg,beach;dog\np2.jpg,beach\np3.jpg,\n")
    done = _evaluate("--model-dir", str(model_dir), "--labels", str(tmp_path / "labels.csv"))
    assert done.returncode == 0, done.stderr
    assert "labels.csv: 4 photos, 4 labels, 2 of 2 tags with positives" in done.stdout


def test_evaluate_without_the_default_set_fails_clearly(model_dir: Path, tmp_path: Path):
    done = _evaluate("--model-dir", str(model_dir), "--labels", str(tmp_path / "nothing-here.txt"))
    assert done.returncode == 1 and "--labels takes a CSV file" in done.stderr


def test_calibrate_writes_thresholds_the_loader_accepts(model_dir: Path, tmp_path: Path, monkeypatch, capsys):
    require(COCO / "panoptic_val2017.json")
    from cliptag import loading
    from cliptag.bundle import ModelBundle

    from model_export.cli import main

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    before = ModelBundle.open(copy)
    shape, key, version = before.tag_embeddings.shape, before.model_key, before.vocabulary.version
    # At the lowest threshold precision is positives / photos >= 2/8: every tag with 2 positives calibrates.
    args = ["--limit", "8", "--calibrate", "--min-positives", "2", "--target-precision", "0.25", "--threads", "1"]
    assert main(["evaluate", "--model-dir", str(copy), "--no-progress", *args]) == 0
    out = capsys.readouterr().out
    assert "calibration: target precision 0.25" in out and "default ->" in out

    monkeypatch.setenv("MODEL_DIR", str(copy))
    monkeypatch.delenv("MODEL_S3_URI", raising=False)
    loading.reset()
    try:
        after = loading.bundle()  # the functions' loader: every hash and the vocabulary must agree
        assert after.tag_embeddings.shape == shape
        assert after.model_key == key, "stored embeddings stay valid"
        assert loading.image_encoder() is not None
        calibrated = {t.name: t.threshold for t in after.vocabulary.tags if t.threshold is not None}
    finally:
        loading.reset()
    assert calibrated and "person" in calibrated
    assert after.vocabulary.version != version  # what `cliptag retag` looks for
    unchanged = [t for t in after.vocabulary.tags if t.name not in calibrated]
    assert all(t.threshold is None for t in unchanged)  # the default stays the fallback
