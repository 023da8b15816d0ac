"""``python -m devstack --help`` explains every command, and each command its options."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def help_text(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "devstack", *args, "--help"],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}", "PATH": "", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def described(text: str, name: str) -> str:
    """The help text that follows ``name`` at the start of a help line, up to the next entry."""
    match = re.search(rf"^\s+{re.escape(name)}(?: [A-Z_]+)?\s+(.+?)(?=^\s+-{{0,2}}[\w-]+ |\Z)", text, re.M | re.S)
    assert match, f"{name} not listed in:\n{text}"
    return " ".join(match.group(1).split())


def test_top_level_help_lists_each_command_with_a_sentence():
    text = help_text()
    for command in ("up", "demo", "redrive"):
        sentence = described(text, command)
        assert len(sentence.split()) >= 5, f"{command}: {sentence!r}"


def test_each_command_has_a_description_and_documented_options():
    for command, options in (
        ("up", ("--model-dir", "--api-port", "--aws-port", "--state")),
        ("demo", ("--model-dir", "--api-port", "--aws-port", "--state")),
        ("redrive", ("--state",)),
    ):
        text = help_text(command)
        usage, description = text.split("\n\n")[:2]
        assert usage.startswith(f"usage: python -m devstack {command}")
        assert len(description.split()) >= 15, f"{command} has no description:\n{text}"
        for option in options:
            explanation = described(text, option)
            assert len(explanation.split()) >= 4, f"{command} {option}: {explanation!r}"
    up = " ".join(help_text("up").split())
    assert "Ctrl-C" in up and "default: 3000" in up and "default: build/model-tiny" in up
