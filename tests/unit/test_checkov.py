"""checkov on template.yaml: no failed check, every skip with a reason (.ci/checkov_gate.py, `make checkov`)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATE_PATH = ROOT / ".ci" / "checkov_gate.py"


def _gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("checkov_gate", GATE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gate = _gate()


def _checkov() -> Path | None:
    """checkov from CHECKOV, `make checkov`'s venv or PATH; it cannot live in .venv (its pins)."""
    for candidate in (os.environ.get("CHECKOV"), gate.DEFAULT_CHECKOV, shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def _report(failed: list[dict[str, Any]] | None = None, skipped: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    failed, skipped = failed or [], skipped or []
    return {
        "check_type": "cloudformation",
        "results": {"passed_checks": [], "failed_checks": failed, "skipped_checks": skipped},
        "summary": {"passed": 3, "failed": len(failed), "skipped": len(skipped), "parsing_errors": 0},
    }


def _skipped(resource: str, check_id: str, comment: str) -> dict[str, Any]:
    return {
        "check_id": check_id,
        "resource": resource,
        "check_result": {"result": "SKIPPED", "suppress_comment": comment},
    }


def _template(*skips: Any) -> dict[str, Any]:
    queue: dict[str, Any] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    if skips:
        queue["Metadata"] = {"checkov": {"skip": list(skips)}}
    return {"Resources": {"Queue": queue}}


QUEUE = "AWS::SQS::Queue.Queue"


def test_a_clean_report_with_explained_skips_passes() -> None:
    reason = "Encrypted with SSE-SQS: S3 cannot send under alias/aws/sqs"
    report = _report(skipped=[_skipped(QUEUE, "CKV_AWS_27", reason)])
    problems, _ = gate.evaluate(report, _template({"id": "CKV_AWS_27", "comment": reason}))
    assert problems == []


def test_a_failed_check_fails_the_gate() -> None:
    failed = [
        {
            "check_id": "CKV_AWS_27",
            "resource": QUEUE,
            "check_name": "Ensure all data stored in the SQS queue is encrypted",
        }
    ]
    problems, _ = gate.evaluate(_report(failed=failed), _template())
    assert problems == [f"FAILED CKV_AWS_27 on {QUEUE}: Ensure all data stored in the SQS queue is encrypted"]


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "CKV_AWS_27"},  # checkov records "No comment provided"
        {"id": "CKV_AWS_27", "comment": ""},
        {"id": "CKV_AWS_27", "comment": "   "},
        {"id": "CKV_AWS_27", "comment": "two\nlines"},
    ],
)
def test_a_skip_without_a_one_line_reason_fails_the_gate(entry: dict[str, Any]) -> None:
    comment = str(entry.get("comment", gate.NO_COMMENT))
    problems, _ = gate.evaluate(_report(skipped=[_skipped(QUEUE, "CKV_AWS_27", comment)]), _template(entry))
    assert any("CKV_AWS_27" in p and ("no reason" in p or "one line" in p) for p in problems), problems


def test_an_inline_skip_without_a_reason_fails_the_gate() -> None:
    """`# checkov:skip=CKV_AWS_27` comments are not metadata: checkov's own record tells."""
    problems, _ = gate.evaluate(_report(skipped=[_skipped(QUEUE, "CKV_AWS_27", gate.NO_COMMENT)]), _template())
    assert problems == [f"skip of CKV_AWS_27 on {QUEUE} gives no reason"]


def test_a_stale_or_malformed_skip_fails_the_gate() -> None:
    stale = {"id": "CKV_AWS_999", "comment": "a check this resource does not have"}
    problems, _ = gate.evaluate(_report(), _template(stale))
    assert problems == [f"{QUEUE}: skip of CKV_AWS_999 is not used by checkov (stale or misspelt)"]
    problems, _ = gate.evaluate(_report(), _template({"comment": "no id"}, "CKV_AWS_27"))
    assert len(problems) == 2 and all("Queue" in p for p in problems)


def test_a_report_that_checked_nothing_or_could_not_parse_fails_the_gate() -> None:
    empty = _report()
    empty["summary"] = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 1}
    problems, _ = gate.evaluate(empty, _template())
    assert len(problems) == 2


def test_every_skip_in_the_template_has_a_check_id_and_a_one_line_reason() -> None:
    """Without checkov: the template's own skip metadata."""
    template = gate.yaml.load((ROOT / "template.yaml").read_text("utf-8"), Loader=gate._CfnLoader)
    skips, problems = gate.template_skips(template)
    assert problems == []
    assert skips and all(len(s.comment) >= 30 for s in skips)


def test_the_template_passes_checkov_offline() -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip(
            "checkov is not installed: `make checkov` installs it into build/checkov-venv (it cannot join "
            ".venv: it pins boto3==1.35.49, networkx<2.7 and packaging<24); or set CHECKOV=/path/to/checkov"
        )
    done = subprocess.run(
        [sys.executable, str(GATE_PATH), "--checkov", str(checkov), "--template", str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        timeout=gate.TIMEOUT_S + 60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed 0," in done.stdout
