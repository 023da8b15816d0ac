"""What template.yaml promises for this release's hardening: the tagger's S3 and KMS grants,
every way an object leaves reaching the queue, the batch bound, encryption of the alarm topic,
API Gateway access logs with the caller's identity, and the API function's concurrency."""

from __future__ import annotations

import json
import re

from tests.unit.test_template import NO_VALUE, RESOURCES, TEMPLATE, _actions, _list, _resolve, _statements


def _iam_string_like(pattern: str, value: str) -> bool:
    """IAM's StringLike: `*` is any run of characters, `?` any one character, all else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def test_list_bucket_is_limited_to_the_key_prefix_and_an_empty_prefix_allows_every_key():
    """ListBucket only makes a missing key a 404 (S3 checks it with s3:prefix set to that key): the
    condition admits the keys the tagger reads, those under KeyPrefix, and every key without one."""
    (listing,) = [s for s in _statements("TaggerFunction") if s["Action"] == "s3:ListBucket"]
    assert listing["Sid"] == "DeletedObjectsRead404Not403"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": {"Fn::Sub": "${KeyPrefix}*"}}}
    template, _ = listing["Resource"]["Fn::Sub"]
    assert template.endswith(":s3:::${Bucket}")  # the bucket itself, not its objects
    cases = {
        "": {"photo.jpg": True, "uploads/a.jpg": True, "": True},
        "uploads/": {"uploads/a.jpg": True, "uploads/": True, "other/uploads/a.jpg": False, "upload.jpg": False},
    }
    for prefix, keys in cases.items():
        pattern = _resolve(listing["Condition"]["StringLike"]["s3:prefix"], {"KeyPrefix": prefix})
        for key, allowed in keys.items():
            assert _iam_string_like(pattern, key) is allowed, (prefix, key)
    # The same prefix bounds the objects it may read.
    (read,) = [s for s in _statements("TaggerFunction") if s.get("Sid") == "ReadUploads"]
    assert read["Resource"]["Fn::Sub"][0].endswith("/${KeyPrefix}*")


def test_an_sse_kms_buckets_key_is_granted_only_when_set_only_to_decrypt_only_through_s3():
    param = TEMPLATE["Parameters"]["BucketKmsKeyArn"]
    assert param["Default"] == "" and "kms:Decrypt" in param["Description"]
    assert TEMPLATE["Conditions"]["HasBucketKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "BucketKmsKeyArn"}, ""]}]}
    for good in (
        "",
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ):
        assert re.fullmatch(param["AllowedPattern"], good), good
    for bad in (
        "1234abcd-12ab-34cd-56ef-1234567890ab",  # a key id: IAM needs the ARN
        "arn:aws:kms:us-east-1:111122223333:alias/photos",  # an alias does not authorize Decrypt
        "alias/aws/s3",
        "arn:aws:kms:us-east-1:111122223333:key/*",
        "arn:aws:s3:::photos",
        " arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ):
        assert not re.fullmatch(param["AllowedPattern"], bad), bad
    assert not any(a.startswith("kms:") for a in _actions("TaggerFunction", model_bucket=True, near_duplicates=True))
    (decrypt,) = [
        s for s in _statements("TaggerFunction", bucket_kms_key=True) if s not in _statements("TaggerFunction")
    ]
    assert decrypt["Sid"] == "DecryptUploads" and decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == {"Ref": "BucketKmsKeyArn"}  # that key only
    condition = decrypt["Condition"]
    assert condition == {"StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}}
    assert _resolve(condition["StringEquals"]["kms:ViaService"], {"AWS::Region": "eu-west-1"}) == (
        "s3.eu-west-1.amazonaws.com"
    )


def test_every_way_an_object_leaves_the_bucket_reaches_the_queue_on_both_routes():
    """Deletes and delete markers (ObjectRemoved:*) and S3 Lifecycle expirations, which S3 reports
    as LifecycleExpiration:* and not as ObjectRemoved, on the stack's bucket; EventBridge's "Object
    Deleted" (reason DeleteObject or Lifecycle Expiration) for an existing bucket. Same key filter."""
    queues = RESOURCES["ImagesBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    by_event = {q["Event"]: q for q in queues}
    assert len(by_event) == len(queues)
    assert set(by_event) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"}
    created = by_event["s3:ObjectCreated:*"]
    for q in queues:
        assert q["Queue"] == {"Fn::GetAtt": ["TaggingQueue", "Arn"]}
        assert q["Filter"] == created["Filter"], q["Event"]
    rules = created["Filter"]["Fn::If"][1]["S3Key"]["Rules"]
    assert rules[0]["Fn::If"][1] == {"Name": "prefix", "Value": {"Ref": "KeyPrefix"}}
    assert rules[1]["Fn::If"][1] == {"Name": "suffix", "Value": {"Ref": "KeySuffix"}}
    pattern = RESOURCES["ExistingBucketEventsRule"]["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created", "Object Deleted"]
    key_filter = pattern["detail"]["object"]["Fn::If"]
    assert key_filter[0] == "HasKeyFilter"
    assert key_filter[1] == {"key": [{"wildcard": {"Fn::Sub": "${KeyPrefix}*${KeySuffix}"}}]}
    # The tagger treats each as a removal.
    from cliptag.adapters.notifications import REMOVAL_PREFIXES

    assert {e.split(":")[1] + ":" for e in by_event if not e.startswith("s3:ObjectCreated")} == set(REMOVAL_PREFIXES)


def test_batch_size_is_bounded_and_says_what_the_tagger_holds_in_memory():
    param = TEMPLATE["Parameters"]["BatchSize"]
    assert (param["Default"], param["MinValue"], param["MaxValue"]) == (10, 1, 100)
    description = " ".join(param["Description"].split())
    assert "MaxObjectBytes" in description and "memory" in description and "waves" in description


def test_the_alarm_topic_is_encrypted_with_its_own_key_that_cloudwatch_may_use():
    topic, key = RESOURCES["AlarmTopic"], RESOURCES["AlarmTopicKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert topic["Condition"] == key["Condition"] == RESOURCES["AlarmTopicKeyAlias"]["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]}
    assert RESOURCES["AlarmTopicKeyAlias"]["Properties"]["TargetKeyId"] == {"Ref": "AlarmTopicKey"}
    assert key["Properties"]["EnableKeyRotation"] is True
    policy = key["Properties"]["KeyPolicy"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"AccountAdministersTheKey", "CloudWatchAlarmsPublish"}
    root = by_sid["AccountAdministersTheKey"]
    assert root["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert (root["Effect"], root["Action"]) == ("Allow", "kms:*")
    alarms = by_sid["CloudWatchAlarmsPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(_list(alarms["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert all(s["Effect"] == "Allow" and s["Principal"] != "*" for s in policy["Statement"])
    # The cost is stated where the choice is made.
    assert "$1 a month" in " ".join(TEMPLATE["Parameters"]["AlarmEmail"]["Description"].split())


ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "userArn": "$context.identity.userArn",
    "accountId": "$context.identity.accountId",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
}


def test_api_access_logs_are_json_lines_with_the_callers_identity_kept_like_the_other_logs():
    setting = RESOURCES["Api"]["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert json.loads(setting["Format"]) == ACCESS_LOG_FIELDS
    group = RESOURCES["ApiAccessLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_api_gateway_logs_through_a_kept_account_role_unless_the_account_has_one():
    param = TEMPLATE["Parameters"]["ApiGatewayCloudWatchRole"]
    assert param["Default"] == "Create" and param["AllowedValues"] == ["Create", "Existing"]
    assert TEMPLATE["Conditions"]["CreatesApiGatewayCloudWatchRole"] == {
        "Fn::Equals": [{"Ref": "ApiGatewayCloudWatchRole"}, "Create"]
    }
    role, account = RESOURCES["ApiGatewayCloudWatchLogsRole"], RESOURCES["ApiGatewayAccount"]
    assert (role["Type"], account["Type"]) == ("AWS::IAM::Role", "AWS::ApiGateway::Account")
    for res in (role, account):
        # Account-wide and per Region: deleting the stack must not take it from other APIs.
        assert res["Condition"] == "CreatesApiGatewayCloudWatchRole"
        assert res["DeletionPolicy"] == res["UpdateReplacePolicy"] == "Retain"
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchLogsRole", "Arn"]}
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert role["Properties"]["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
    ]
    # The stage (with access logging) waits for the setting when the stack makes it; DependsOn
    # cannot name a conditional resource, so the API depends on a handle that references it.
    assert RESOURCES["Api"]["DependsOn"] == "ApiGatewayLoggingReady"
    ready = RESOURCES["ApiGatewayLoggingReady"]
    assert ready["Type"] == "AWS::CloudFormation::WaitConditionHandle" and "Condition" not in ready
    (reference,) = ready["Metadata"].values()
    assert reference["Fn::If"][:2] == ["CreatesApiGatewayCloudWatchRole", {"Ref": "ApiGatewayAccount"}]


def test_the_api_function_has_reserved_concurrency_unless_the_parameter_is_zero():
    param = TEMPLATE["Parameters"]["ApiReservedConcurrency"]
    assert (param["Type"], param["Default"], param["MinValue"]) == ("Number", 20, 0)
    description = " ".join(param["Description"].split())
    assert "0:" in description and "100" in description  # none, and why it can fail
    assert TEMPLATE["Conditions"]["HasApiReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ApiReservedConcurrency"}, "0"]}]
    }
    assert RESOURCES["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasApiReservedConcurrency", {"Ref": "ApiReservedConcurrency"}, NO_VALUE]
    }
    # The tagger's concurrency is the queue's to bound (MaximumConcurrency), not reserved.
    tagger = RESOURCES["TaggerFunction"]["Properties"]
    assert "ReservedConcurrentExecutions" not in tagger
    scaling = tagger["Events"]["TaggingQueueEvent"]["Properties"]["ScalingConfig"]
    assert scaling == {"MaximumConcurrency": {"Ref": "MaxConcurrency"}}
