"""Labelled photo sets for the accuracy harness: photos, the tags they have, and the label space.

Three sources, all resolved to vocabulary tag names:

* the default, COCO val2017 panoptic (``../shared/data/images/coco-val2017``), through the
  category -> tag table in ``coco_panoptic.yaml``;
* a CSV with a header ``path,tags``: tags separated by ``;``, paths relative to the CSV;
* a folder with one sub-folder per tag; a photo with several tags is copied into each of them
  (copies are recognised by their bytes, as the tagger recognises identical content).

A photo is a negative for every tag of the label space it is not labelled with.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import NDArray

from model_export.photos import COCO_DIR

COCO_PANOPTIC = COCO_DIR / "panoptic_val2017.json"
COCO_MAPPING = Path(__file__).with_name("coco_panoptic.yaml")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".gif", ".tif", ".tiff", ".bmp", ".avif"}


class LabelsError(ValueError):
    """A labelled set that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class LabelledSet:
    name: str
    photos: tuple[Path, ...]
    tags: tuple[str, ...]  # the label space, vocabulary names
    truth: NDArray[np.bool_]  # [photos, tags]
    unmapped: tuple[str, ...] = field(default=())  # source labels with no tag (left out of the truth)

    def head(self, limit: int | None) -> LabelledSet:
        if limit is None or limit >= len(self.photos):
            return self
        return LabelledSet(self.name, self.photos[:limit], self.tags, self.truth[:limit], self.unmapped)


def from_pairs(name: str, pairs: Iterable[tuple[Path, set[str]]], space: Iterable[str]) -> LabelledSet:
    """(photo, its tags) pairs -> a set whose label space is ``space`` (in that order)."""
    tags = tuple(dict.fromkeys(space))
    column = {t: i for i, t in enumerate(tags)}
    rows = list(pairs)
    truth = np.zeros((len(rows), len(tags)), dtype=bool)
    for i, (_, labels) in enumerate(rows):
        truth[i, [column[t] for t in labels]] = True
    return LabelledSet(name, tuple(p for p, _ in rows), tags, truth)


def _canonical(names: Iterable[str], vocabulary: list[str], source: str) -> dict[str, str]:
    """Each label -> the vocabulary's spelling (case-insensitive); unknown labels are an error."""
    known = {n.casefold(): n for n in vocabulary}
    labels = set(names)
    unknown = sorted(n for n in labels if n.casefold() not in known)
    if unknown:
        raise LabelsError(f"{source}: {len(unknown)} label(s) are not tags of the model's vocabulary: {unknown[:10]}")
    return {n: known[n.casefold()] for n in labels}


def load_csv(path: Path, vocabulary: list[str]) -> LabelledSet:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"path", "tags"} <= set(reader.fieldnames):
            raise LabelsError(f"{path}: expected a header line 'path,tags'")
        rows: dict[Path, set[str]] = {}
        for line, row in enumerate(reader, start=2):
            photo = (path.parent / (row["path"] or "").strip()).resolve()
            if not photo.is_file():
                raise LabelsError(f"{path}: line {line}: no photo at {photo}")
            rows.setdefault(photo, set()).update(t.strip() for t in (row["tags"] or "").split(";") if t.strip())
    if not rows:
        raise LabelsError(f"{path}: no photos listed")
    spelling = _canonical({t for tags in rows.values() for t in tags}, vocabulary, str(path))
    pairs = [(p, {spelling[t] for t in tags}) for p, tags in rows.items()]
    return from_pairs(path.name, pairs, sorted(spelling.values()))


def load_folder(root: Path, vocabulary: list[str]) -> LabelledSet:
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    spelling = _canonical([d.name for d in folders], vocabulary, str(root))
    by_content: dict[str, tuple[Path, set[str]]] = {}
    for folder in folders:
        for photo in sorted(folder.iterdir()):
            if photo.suffix.lower() in IMAGE_SUFFIXES and not photo.name.startswith("."):
                digest = hashlib.sha256(photo.read_bytes()).hexdigest()
                by_content.setdefault(digest, (photo, set()))[1].add(spelling[folder.name])
    if not by_content:
        raise LabelsError(f"{root}: no photos in its sub-folders (one sub-folder per tag)")
    return from_pairs(root.name, by_content.values(), [spelling[d.name] for d in folders])


def load_mapping(path: Path, categories: Iterable[str], vocabulary: list[str] | None = None) -> dict[str, list[str]]:
    """Category name -> tags; every category must be listed (null: no tag), every tag must exist."""
    doc = yaml.safe_load(path.read_text("utf-8")) or {}
    table = doc.get("categories") if isinstance(doc, dict) else None
    if not isinstance(table, dict):
        raise LabelsError(f"{path}: expected 'categories:' mapping category name -> tag, [tags] or null")
    wanted = list(categories)
    missing = [c for c in wanted if c not in table]
    if missing:
        raise LabelsError(f"{path}: categories not mapped (map them to a tag or to null): {missing[:10]}")
    mapping = {c: [] if t is None else [t] if isinstance(t, str) else list(t) for c, t in table.items()}
    if vocabulary is not None:
        unknown = sorted({t for tags in mapping.values() for t in tags} - set(vocabulary))
        if unknown:
            raise LabelsError(f"{path}: tags not in the model's vocabulary: {unknown[:10]}")
    return mapping


def load_coco_panoptic(
    annotations: Path = COCO_PANOPTIC, vocabulary: list[str] | None = None, mapping_file: Path = COCO_MAPPING
) -> LabelledSet:
    if not annotations.is_file():
        raise LabelsError(
            f"the default labelled set is not there: {annotations} is missing (it comes from ../shared/data beside "
            "the repository). Pass your own photos with --labels FILE.csv or --labels FOLDER (docs/accuracy.md)."
        )
    doc = json.loads(annotations.read_text("utf-8"))
    names = {c["id"]: c["name"] for c in doc["categories"]}
    mapping = load_mapping(mapping_file, names.values(), vocabulary)
    files = {i["id"]: i["file_name"] for i in doc["images"]}
    pairs = []
    for ann in sorted(doc["annotations"], key=lambda a: files[a["image_id"]]):
        photo = annotations.parent / files[ann["image_id"]]
        if photo.is_file():
            pairs.append((photo, {t for s in ann["segments_info"] for t in mapping[names[s["category_id"]]]}))
    if not pairs:
        raise LabelsError(f"{annotations}: none of its photos are beside it")
    space = [t for tags in mapping.values() for t in tags]
    unmapped = tuple(c for c, tags in mapping.items() if not tags)
    labelled = from_pairs("COCO val2017 panoptic", pairs, space)
    return LabelledSet(labelled.name, labelled.photos, labelled.tags, labelled.truth, unmapped)


def load_labels(source: Path | None, vocabulary: list[str]) -> LabelledSet:
    """``--labels``: nothing for COCO panoptic, a folder (one sub-folder per tag), or a CSV."""
    if source is None:
        return load_coco_panoptic(vocabulary=vocabulary)
    if source.is_dir():
        return load_folder(source, vocabulary)
    if source.suffix.lower() == ".csv" and source.is_file():
        return load_csv(source, vocabulary)
    raise LabelsError(f"{source}: --labels takes a CSV file (path,tags) or a folder with one sub-folder per tag")
