"""docs/reliability.md's least-privilege table says exactly what template.yaml grants each function."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from devstack.template_local import load_template

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
FUNCTIONS = {"TaggerFunction": "tagger", "ApiFunction": "API", "CaptionFunction": "captioner"}
# SAM policy templates the functions use: their statements, as SAM expands them
# (samtranslator/policy_templates_data/policy_templates.json); the resource is the template's parameter.
SAM_POLICY_TEMPLATES = {"AWSSecretsManagerGetSecretValuePolicy": (["secretsmanager:GetSecretValue"], "SecretArn")}

Row = tuple[str, str, frozenset[str], frozenset[str], frozenset[str], str]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """A resource or condition value as the table writes it: `Ref X` -> X, `GetAtt X.Y` -> X.Y,
    `Sub` -> its template string (variables as ${...})."""
    if isinstance(value, str):
        return value
    ((function, arg),) = value.items()
    if function == "Ref":
        return str(arg)
    if function == "Fn::GetAtt":
        return ".".join(arg)
    if function == "Fn::Sub":
        return str(arg[0] if isinstance(arg, list) else arg)
    raise AssertionError(f"the table has no form for {value!r}")


def _conditions(statement: dict[str, Any]) -> frozenset[str]:
    return frozenset(
        f"{operator} {key} {render(v)}"
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
        for v in _list(values)
    )


def template_rows() -> set[Row]:
    """(function, Sid, actions, resources, IAM conditions, when) for each statement the template gives
    a function; `when` is the template Condition of a statement under Fn::If, else "always"."""
    resources = load_template()["Resources"]
    rows: set[Row] = set()
    for logical_id, name in FUNCTIONS.items():
        for policy in resources[logical_id]["Properties"]["Policies"]:
            if "Statement" not in policy:
                ((sam_template, params),) = policy.items()
                actions, parameter = SAM_POLICY_TEMPLATES[sam_template]
                resource = render(params[parameter])
                rows.add((name, sam_template, frozenset(actions), frozenset([resource]), frozenset(), "always"))
                continue
            for statement in policy["Statement"]:
                when = "always"
                if "Fn::If" in statement:
                    when, statement, otherwise = statement["Fn::If"]
                    assert otherwise == {"Ref": "AWS::NoValue"}
                assert statement["Effect"] == "Allow"
                rows.add(
                    (
                        name,
                        statement["Sid"],
                        frozenset(_list(statement["Action"])),
                        frozenset(render(r) for r in _list(statement["Resource"])),
                        _conditions(statement),
                        when,
                    )
                )
    return rows


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def doc_rows(text: str) -> set[Row]:
    """The rows of the first table in the "Least privilege" section:
    | function | Sid | actions | resources | condition | granted |, values in backticks."""
    section = text.split("\n## Least privilege\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header, rule, *body = lines
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "function",
        "Sid",
        "actions",
        "resources",
        "condition",
        "granted",
    ], header
    assert set(rule) <= set("|-: ")
    rows: set[Row] = set()
    for line in body:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, line
        function, sid, actions, resources, condition, when = cells
        (sid_name,) = _ticked(sid)
        granted = _ticked(when)
        rows.add(
            (
                function,
                sid_name,
                frozenset(_ticked(actions)),
                frozenset(_ticked(resources)),
                frozenset(_ticked(condition)),
                granted[0] if granted else when,
            )
        )
    assert len(rows) == len(body), "a row is listed twice"
    return rows


def test_the_least_privilege_table_lists_exactly_each_functions_grants() -> None:
    documented, granted = doc_rows(DOC.read_text("utf-8")), template_rows()
    missing = sorted(granted - documented, key=str)
    extra = sorted(documented - granted, key=str)
    assert not missing and not extra, (
        "docs/reliability.md, Least privilege, disagrees with template.yaml:\n"
        + "".join(f"  not in the doc: {row}\n" for row in missing)
        + "".join(f"  not in the template: {row}\n" for row in extra)
    )


def test_the_comparison_notices_a_missing_or_widened_grant() -> None:
    text = DOC.read_text("utf-8")
    rows = doc_rows(text)
    line = next(line for line in text.splitlines() if line.startswith("| tagger | `WriteTags`"))
    assert doc_rows(text.replace(line + "\n", "")) == rows - {r for r in rows if r[1] == "WriteTags"}
    widened = text.replace(line, line.replace("`dynamodb:Query`", "`dynamodb:Query`, `dynamodb:Scan`"))
    assert doc_rows(widened) != rows
