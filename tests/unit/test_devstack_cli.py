"""``python -m devstack --help`` explains every command, and each command its options."""

from __future__ import annotations

import json
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
    for command in ("up", "redeploy", "demo", "redrive"):
        sentence = described(text, command)
        assert len(sentence.split()) >= 5, f"{command}: {sentence!r}"


def test_each_command_has_a_description_and_documented_options():
    for command, options in (
        ("up", ("--model-dir", "--api-port", "--aws-port", "--state")),
        ("demo", ("--model-dir", "--api-port", "--aws-port", "--state")),
        ("redeploy", ("--model-dir", "--state", "--timeout")),
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


def test_redeploy_says_why_when_there_is_no_running_stack(model_dir, tmp_path):
    def redeploy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devstack", "redeploy", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    state = tmp_path / "local-stack.json"
    done = redeploy("--model-dir", str(model_dir), "--state", str(state))
    assert done.returncode == 1 and f"no local stack: {state} not found" in done.stderr
    state.write_text(json.dumps({"pid": 0}))  # a stack run in-process by a test or a tool, not by `up`
    done = redeploy("--model-dir", str(model_dir), "--state", str(state))
    assert done.returncode == 1 and "no running `python -m devstack up`" in done.stderr
    done = redeploy("--model-dir", str(tmp_path), "--state", str(state))  # checked before the stack is asked
    assert done.returncode == 1 and "manifest" in done.stderr


def test_the_running_stack_refuses_a_model_for_another_search_index(model_dir, tmp_path):
    from types import SimpleNamespace

    from devstack.control import deploy_model

    def redeploy(*args: object) -> None:
        raise AssertionError("the functions must keep their model")

    stack = SimpleNamespace(
        model_dir=tmp_path, parameters={"EmbeddingDimension": "3"}, info=object(), redeploy=redeploy
    )
    answer = deploy_model(stack, tmp_path / "state.json", model_dir)  # type: ignore[arg-type]
    assert answer["ok"] is False and "the stack's search index in 3" in answer["error"]
    assert not (tmp_path / "state.json").exists()


def test_template_parameters_are_checked_as_cloudformation_checks_them():
    import pytest

    from devstack.cli import template_parameters
    from devstack.template_local import load_template

    declared = load_template()["Parameters"]
    assert template_parameters(["TopK=5", "NearDuplicates=On"], declared) == {"TopK": "5", "NearDuplicates": "On"}
    for option, said in (
        ("Nope=1", "no such parameter"),
        ("NearDuplicates=Maybe", "one of Off, On"),
        ("TopK=500", "between 1 and 40"),
        ("TopK=five", "a number is expected"),
        ("TopK", "expected Name=Value"),
    ):
        with pytest.raises(SystemExit, match=said):
            template_parameters([option], declared)
    assert "--parameter" in help_text("up") and "TopK=5" in help_text("up")
