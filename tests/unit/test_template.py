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
