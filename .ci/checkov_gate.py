"""Runs checkov on template.yaml offline and fails on any failed check or unexplained skip.

    python .ci/checkov_gate.py [--checkov PATH] [--template template.yaml]

checkov runs without the network: no API key (the Bridgecrew/Prisma variables are removed from its
environment), ``--skip-download`` and ``BC_SKIP_MAPPING=TRUE`` (no policy metadata or guidelines
download), ``CKV_SKIP_PACKAGE_UPDATE_CHECK=true`` (no PyPI version check); where the machine allows
it (root, util-linux ``unshare``), in a network namespace of its own with no interface but loopback,
so a call that slipped through fails at once instead of waiting on DNS.

The run fails (exit 1) when checkov reports a failed check or a parsing error, when a skip carries
no reason (checkov's "No comment provided"), or when the template's skip metadata
(``Metadata: checkov: skip: [{id, comment}]``) holds an entry without an id, without a one-line
comment, or one that checkov did not use on that resource (a stale or misspelt skip). Standard
library and PyYAML only: it runs in checkov's own environment or the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKOV = ROOT / "build" / "checkov-venv" / "bin" / "checkov"
NO_COMMENT = "No comment provided"  # what checkov records for a skip without a reason
CHECK_ID = re.compile(r"^CKV2?_AWS_[0-9]+$")
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "LOG_LEVEL": "WARNING"}
# checkov talks to the platform only with one of these: none may reach it.
PLATFORM_ENV = ("BC_API_KEY", "BC_API_URL", "PRISMA_API_URL", "CKV_API_KEY", "BC_REPO_ID")
TIMEOUT_S = 600


@dataclass(frozen=True)
class Skip:
    resource: str  # e.g. "AWS::SQS::Queue.TaggingQueue", as checkov names it
    check_id: str
    comment: str


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values: only the
    resources' types and metadata matter here."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node, deep=True)


_CfnLoader.add_multi_constructor("!", _any_tag)


def template_skips(template: dict[str, Any]) -> tuple[list[Skip], list[str]]:
    """The skips the template declares in its resources' metadata, and what is wrong with them."""
    skips: list[Skip] = []
    problems: list[str] = []
    for name, resource in (template.get("Resources") or {}).items():
        metadata = resource.get("Metadata") or {}
        for tool in ("checkov", "bridgecrew"):
            entries = (metadata.get(tool) or {}).get("skip") or []
            for entry in entries:
                where = f"{name}: {tool} skip {entry!r}"
                if not isinstance(entry, dict):
                    problems.append(f"{where} is not a mapping with id and comment")
                    continue
                check_id, comment = entry.get("id"), entry.get("comment")
                if not isinstance(check_id, str) or not CHECK_ID.match(check_id):
                    problems.append(f"{where} has no valid check id")
                    continue
                if not isinstance(comment, str) or not comment.strip() or comment.strip() == NO_COMMENT:
                    problems.append(f"{name}: skip of {check_id} gives no reason (comment)")
                elif "\n" in comment.strip():
                    problems.append(f"{name}: the reason for skipping {check_id} must be one line")
                skips.append(Skip(f"{resource.get('Type')}.{name}", check_id, str(comment or "").strip()))
    return skips, problems


def _results(report: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results, summary) of checkov's JSON report: one object, or a list with one per framework."""
    reports = report if isinstance(report, list) else [report]
    reports = [r for r in reports if r.get("check_type") == "cloudformation"]
    if len(reports) != 1:
        raise ValueError(f"expected one cloudformation report from checkov, got {len(reports)}")
    return reports[0].get("results") or {}, reports[0].get("summary") or {}


def evaluate(report: Any, template: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The problems that fail the gate (empty: it passes) and checkov's summary."""
    results, summary = _results(report)
    problems: list[str] = []
    if summary.get("parsing_errors"):
        problems.append(f"checkov could not parse the template ({summary['parsing_errors']} parsing errors)")
    if not (summary.get("passed", 0) + summary.get("failed", 0) + summary.get("skipped", 0)):
        problems.append("checkov ran no check on the template")
    for check in results.get("failed_checks") or []:
        problems.append(f"FAILED {check['check_id']} on {check['resource']}: {check.get('check_name', '')}")
    used = set()
    for check in results.get("skipped_checks") or []:
        used.add((check["resource"], check["check_id"]))
        comment = str((check.get("check_result") or {}).get("suppress_comment") or "").strip()
        if not comment or comment == NO_COMMENT:
            problems.append(f"skip of {check['check_id']} on {check['resource']} gives no reason")
    declared, metadata_problems = template_skips(template)
    problems += metadata_problems
    for skip in declared:
        if (skip.resource, skip.check_id) not in used:
            problems.append(f"{skip.resource}: skip of {skip.check_id} is not used by checkov (stale or misspelt)")
    return problems, summary


def _network_isolation() -> list[str]:
    """`unshare --net` where it works here (root, util-linux), else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
    return [unshare, "--net"] if probe.returncode == 0 else []


def run_checkov(checkov: Path, template: Path) -> tuple[Any, float, bool]:
    """checkov's JSON report on the template, the seconds it took, and whether it ran without a network."""
    env = {k: v for k, v in os.environ.items() if k not in PLATFORM_ENV} | OFFLINE_ENV
    isolation = _network_isolation()
    command = [
        *isolation,
        str(checkov),
        "--file",
        str(template),
        "--framework",
        "cloudformation",
        "--skip-download",
        "--output",
        "json",
    ]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False)
    seconds = time.monotonic() - start
    if done.returncode not in (0, 1):  # 1: some check failed, judged below
        raise RuntimeError(f"checkov exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout), seconds, bool(isolation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--checkov", type=Path, default=Path(os.environ.get("CHECKOV", DEFAULT_CHECKOV)))
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = parser.parse_args(argv)
    if not args.checkov.exists():
        print(f"checkov not found at {args.checkov} (make checkov installs it)", file=sys.stderr)
        return 2
    template = yaml.load(args.template.read_text("utf-8"), Loader=_CfnLoader)
    report, seconds, isolated = run_checkov(args.checkov, args.template)
    problems, summary = evaluate(report, template)
    results, _ = _results(report)
    network = "no network (own namespace)" if isolated else "offline flags, network not isolated"
    print(
        f"checkov {summary.get('checkov_version', '?')} on {args.template.name}: passed {summary.get('passed', 0)}, "
        f"failed {summary.get('failed', 0)}, skipped {summary.get('skipped', 0)} in {seconds:.1f} s, {network}"
    )
    for check in results.get("skipped_checks") or []:
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        print(f"  skipped {check['check_id']} on {check['resource']}: {comment}")
    for problem in problems:
        print(f"ERROR {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
