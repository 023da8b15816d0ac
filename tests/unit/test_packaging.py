"""What a non-editable install gets: the wheel built from pyproject.toml."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

build_meta = pytest.importorskip("setuptools.build_meta", reason="building the wheel needs setuptools")


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The wheel's file list, built from a copy of the sources (the build writes build/ and
    *.egg-info beside pyproject.toml, and build/ is where the model directories live)."""
    import os

    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    for package in ("functions", "cliptag_cli", "model_export", "devstack"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    cwd = Path.cwd()
    os.chdir(src)
    try:
        name = build_meta.build_wheel(str(src / "dist"))
    finally:
        os.chdir(cwd)
    with zipfile.ZipFile(src / "dist" / name) as wheel:
        return set(wheel.namelist())


def test_the_wheel_ships_the_default_vocabulary_and_its_folder(wheel_files: set[str]):
    from model_export.vocabulary_file import DEFAULT_VOCABULARY

    assert DEFAULT_VOCABULARY.relative_to(ROOT).as_posix() in wheel_files
    folder = ROOT / "model_export" / "vocabulary"
    shipped = {p.relative_to(ROOT).as_posix() for p in folder.iterdir() if p.is_file()}
    assert shipped <= wheel_files


def test_offline_tools_live_in_model_export_not_in_the_functions(wheel_files: set[str]):
    assert {"model_export/rescoring.py", "cliptag/text.py"} <= wheel_files
    assert "cliptag/rescoring.py" not in wheel_files


def test_the_cliptag_command_and_the_adapters_are_in_the_wheel(wheel_files: set[str]):
    assert {"cliptag_cli/main.py", "cliptag/adapters/dynamodb/objects.py", "cliptag/adapters/s3.py"} <= wheel_files


def test_the_gallery_ships_its_pages(wheel_files: set[str]):
    static = ROOT / "cliptag_cli" / "gallery" / "static"
    shipped = {p.relative_to(ROOT).as_posix() for p in static.iterdir() if p.is_file()}
    assert {"cliptag_cli/gallery/static/index.html", "cliptag_cli/gallery/static/app.js"} <= shipped <= wheel_files
