"""What template.yaml promises, checked on the template itself."""

from __future__ import annotations

import json

from devstack.template_local import load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]


def test_functions_cannot_trigger_themselves():
    """Recursion guard: the only event source is the queue fed by the bucket, and no function may
    write to the bucket (or to anything that notifies the queue)."""
    for name in ("TaggerFunction", "ApiFunction"):
        policies = json.dumps(RESOURCES[name]["Properties"]["Policies"])
        assert "S3CrudPolicy" not in policies and "S3WritePolicy" not in policies and "s3:Put" not in policies
    events = RESOURCES["TaggerFunction"]["Properties"]["Events"]
    assert [e["Type"] for e in events.values()] == ["SQS"]
    queues = RESOURCES["ImagesBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {q["Queue"]["Fn::GetAtt"][0] for q in queues} == {"TaggingQueue"}


def test_storage_is_private_encrypted_and_recoverable():
    bucket = RESOURCES["ImagesBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    table = RESOURCES["TagsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert RESOURCES["TaggingQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceives"}
    policy = json.dumps(RESOURCES["ImagesBucketPolicy"]["Properties"]["PolicyDocument"])
    assert "aws:SecureTransport" in policy


def test_api_requires_iam_by_default_and_visibility_outlasts_the_function():
    assert RESOURCES["Api"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    params = TEMPLATE["Parameters"]
    assert params["QueueVisibilityTimeout"]["Default"] > params["TaggerTimeout"]["Default"]
    assert params["QueueVisibilityTimeout"]["MinValue"] > 0


def _statements(function: str) -> list[dict]:
    return [s for p in RESOURCES[function]["Properties"]["Policies"] if "Statement" in p for s in p["Statement"]]


def test_iam_grants_each_function_only_the_calls_it_makes():
    """No wildcard actions or resources, no Scan: the API cannot scan the table even by mistake."""
    tagger = {a for s in _statements("TaggerFunction") for a in _list(s["Action"])}
    api = {a for s in _statements("ApiFunction") for a in _list(s["Action"])}
    assert tagger == {
        "s3:GetObject",
        "s3:ListBucket",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    }
    assert api == {"dynamodb:GetItem", "dynamodb:Query"}
    for name in ("TaggerFunction", "ApiFunction"):
        text = json.dumps(RESOURCES[name]["Properties"]["Policies"])
        assert '"*"' not in text and ":*" not in text and "Crud" not in text and "Scan" not in text
        for statement in _statements(name):
            assert statement["Resource"] != "*"


def test_cors_is_off_by_default_and_preflights_need_no_signature():
    assert TEMPLATE["Parameters"]["CorsAllowOrigin"]["Default"] == ""
    events = RESOURCES["ApiFunction"]["Properties"]["Events"]
    preflights = [e["Properties"] for e in events.values() if e["Properties"]["Method"] == "OPTIONS"]
    routes = [e["Properties"] for e in events.values() if e["Properties"]["Method"] == "GET"]
    assert {p["Path"] for p in preflights} == {r["Path"] for r in routes}
    assert all(p["Auth"] == {"Authorizer": "NONE"} for p in preflights)
    assert all("Auth" not in r for r in routes)  # the IAM default applies


def _list(value: object) -> list:
    return value if isinstance(value, list) else [value]
