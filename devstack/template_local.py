"""Derive what moto's CloudFormation can create from the real ``template.yaml``.

moto does not run the SAM transform nor apply bucket notifications, so the local template keeps
the plain storage resources (bucket, queues, table) and the notification configuration is
returned separately, to be applied with PutBucketNotificationConfiguration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LOCAL_TYPES = {"AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Events::Rule"}
TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as their long form."""


def _construct(tag: str):  # type: ignore[no-untyped-def]
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            assert isinstance(node, yaml.MappingNode)
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return build


for _tag in (
    "Ref",
    "Sub",
    "GetAtt",
    "Join",
    "Select",
    "Split",
    "If",
    "Not",
    "Equals",
    "Or",
    "And",
    "Condition",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Base64",
):
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.load(path.read_text("utf-8"), Loader=_CfnLoader)
    return doc


def local_template(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(template for moto, the bucket's NotificationConfiguration)."""
    resources = {name: dict(res) for name, res in template["Resources"].items() if res["Type"] in LOCAL_TYPES}
    notification: dict[str, Any] = {}
    for res in resources.values():
        res.pop("DependsOn", None)
        props = dict(res.get("Properties", {}))
        if res["Type"] == "AWS::S3::Bucket":
            notification = props.pop("NotificationConfiguration", {})
            # The local bucket keeps its real name shape; drop what moto does not model.
            props.pop("OwnershipControls", None)
        res["Properties"] = props
    used = {"Parameters", "Conditions"}
    local = {k: v for k, v in template.items() if k in used}
    local["AWSTemplateFormatVersion"] = "2010-09-09"
    local["Resources"] = resources
    return local, notification


def parameter_environment(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    """The functions' environment variables the template sets from a parameter (``!Ref Name``),
    resolved with ``parameters`` (the defaults otherwise): what a deployed stack's functions get
    for them, so ``--parameter TopK=5`` reaches the tagger as ``TOP_K=5``."""
    declared = template.get("Parameters", {})
    values = {name: str(spec.get("Default", "")) for name, spec in declared.items()} | parameters
    blocks = [template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})]
    blocks += [
        resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    found: dict[str, str] = {}
    for block in blocks:
        for name, value in block.items():
            if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in declared:
                found[name] = values[value["Ref"]]
    return found
