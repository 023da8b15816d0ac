"""What template.yaml promises, checked on the template itself."""

from __future__ import annotations

import json
import re
from typing import Any

from devstack.template_local import load_template, local_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = ("TaggerFunction", "ApiFunction")
NO_VALUE = {"Ref": "AWS::NoValue"}
# What the tagger emits through Powertools (namespace cliptag, dimension service=tagger).
POWERTOOLS_METRICS = (
    "ImagesTagged",
    "ImagesReused",
    "ImagesRetagged",
    "ImagesFailed",
    "ObjectsDeleted",
    "InferenceImages",
    "InferenceMs",
    "TransientFailures",
    "MalformedMessages",
)


def test_functions_cannot_trigger_themselves():
    """Recursion guard: the only event source is the queue fed by the bucket; the API never writes
    to the bucket; the tagger writes to it only with WriteBack on, and only object tags (whose
    s3:ObjectTagging:* events the bucket does not send) and objects under SidecarPrefix (which it
    never tags: tests/integration/test_write_back.py)."""
    for name in ("ApiFunction", "CaptionFunction"):
        policies = json.dumps(RESOURCES[name]["Properties"]["Policies"])
        assert "S3CrudPolicy" not in policies and "S3WritePolicy" not in policies and "s3:Put" not in policies
    statements = RESOURCES["TaggerFunction"]["Properties"]["Policies"][0]["Statement"]
    writes = [s for s in statements if "s3:Put" in json.dumps(s)]
    assert [w["Fn::If"][0] for w in writes] == ["WritesObjectTags", "WritesSidecars"]
    tags, sidecars = (w["Fn::If"][1] for w in writes)
    assert "s3:PutObject" not in tags["Action"] and "${KeyPrefix}*" in json.dumps(tags["Resource"])
    assert "s3:PutObject" in sidecars["Action"] and "${SidecarPrefix}*" in json.dumps(sidecars["Resource"])
    assert "S3CrudPolicy" not in json.dumps(statements) and "S3WritePolicy" not in json.dumps(statements)
    notified = RESOURCES["ImagesBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {q["Event"] for q in notified} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"}
    events = RESOURCES["TaggerFunction"]["Properties"]["Events"]
    assert [e["Type"] for e in events.values()] == ["SQS"]
    queues = RESOURCES["ImagesBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {q["Queue"]["Fn::GetAtt"][0] for q in queues} == {"TaggingQueue"}
    # The caption function is fed by the tagger alone, and writes no object and no record.
    captions = RESOURCES["CaptionFunction"]["Properties"]["Events"]
    assert [e["Properties"]["Queue"]["Fn::GetAtt"][0] for e in captions.values()] == ["CaptionQueue"]


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


FLAGS = {  # a keyword of _statements: the parameter value that turns it on
    "model_bucket": ("ModelS3Uri", "s3://models-bucket/clip"),
    "api_model_bucket": ("ApiModelS3Uri", "s3://api-models/siglip2"),
    "near_duplicates": ("NearDuplicates", "On"),
    "bucket_kms_key": ("BucketKmsKeyArn", "arn:aws:kms:eu-west-1:111122223333:key/k"),
}


def _condition(name: str, params: dict[str, str]) -> bool:
    """A template condition evaluated as CloudFormation would, with the parameters given (the
    others at their defaults)."""
    return bool(_evaluate(TEMPLATE["Conditions"][name], params))


def _evaluate(value: Any, params: dict[str, str]) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((function, arg),) = value.items()
        if function == "Ref" and arg in TEMPLATE["Parameters"]:
            return params.get(arg, str(TEMPLATE["Parameters"][arg].get("Default", "")))
        if function == "Fn::Equals":
            return str(_evaluate(arg[0], params)) == str(_evaluate(arg[1], params))
        if function == "Fn::Not":
            return not _evaluate(arg[0], params)
        if function in ("Fn::And", "Fn::Or"):
            results = [_evaluate(a, params) for a in arg]
            return all(results) if function == "Fn::And" else any(results)
        if function in ("Condition", "Fn::Condition"):  # how the loader spells !Condition
            return _condition(arg, params)
    return value


def _statements(function: str, **flags: bool) -> list[dict]:
    """The function's own statements with the parameters that ``flags`` turn on (FLAGS); one
    under `Fn::If [condition, ...]` counts when the template's condition holds for them."""
    params = dict(FLAGS[flag] for flag, on in flags.items() if on)
    statements = []
    for policy in RESOURCES[function]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []):
            if "Fn::If" in statement:
                condition, then, otherwise = statement["Fn::If"]
                assert otherwise == NO_VALUE
                if _condition(condition, params):
                    statements.append(then)
            else:
                statements.append(statement)
    return statements


def _actions(function: str, **flags: bool) -> set[str]:
    return {a for s in _statements(function, **flags) for a in _list(s["Action"])}


def test_iam_grants_each_function_only_the_calls_it_makes():
    """No wildcard actions or resources, no Scan: the API cannot scan the table even by mistake."""
    tagger = {
        "s3:GetObject",
        "s3:ListBucket",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "s3vectors:PutVectors",
        "s3vectors:DeleteVectors",
    }
    assert _actions("TaggerFunction") == _actions("TaggerFunction", model_bucket=True) == tagger
    # The near-duplicate check queries (a query returning metadata also needs GetVectors).
    near = {"s3vectors:QueryVectors", "s3vectors:GetVectors"}
    assert _actions("TaggerFunction", near_duplicates=True) == tagger | near
    # An SSE-KMS bucket's key: Decrypt only, and only with BucketKmsKeyArn set.
    assert _actions("TaggerFunction", bucket_kms_key=True) == tagger | {"kms:Decrypt"}
    api = {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "s3vectors:QueryVectors",
        "s3vectors:GetVectors",
        "dynamodb:UpdateItem",  # a decision on a content's tags (RecordDecisions, below)
        "sqs:SendMessage",  # the re-tags it asks for
    }
    assert _actions("ApiFunction") == api == _actions("ApiFunction", bucket_kms_key=True)
    assert _actions("ApiFunction", model_bucket=True) == api | {"s3:GetObject"}
    assert _actions("ApiFunction", api_model_bucket=True) == api | {"s3:GetObject"}
    assert _actions("TaggerFunction", api_model_bucket=True) == tagger
    for name in FUNCTIONS:
        text = json.dumps(RESOURCES[name]["Properties"]["Policies"])
        assert '"*"' not in text and ":*" not in text and "Crud" not in text and "Scan" not in text
        assert "S3ReadPolicy" not in text  # it granted the whole model bucket
        for statement in _statements(name, **dict.fromkeys(FLAGS, True)):
            assert statement["Resource"] != "*"


def _resolve(value: Any, params: dict[str, str]) -> Any:
    """Evaluates the few intrinsic functions the model statement uses, as CloudFormation would."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, arg),) = value.items()
        if function == "Ref":
            return params[arg]
        if function == "Fn::If":
            return _resolve(arg[1] if _condition(arg[0], params) else arg[2], params)
        if function == "Fn::Select":
            return _resolve(arg[1], params)[arg[0]]
        if function == "Fn::Split":
            return _resolve(arg[1], params).split(arg[0])
        if function == "Fn::Sub":
            text, variables = arg if isinstance(arg, list) else (arg, {})
            values = {**params, **{k: _resolve(v, params) for k, v in variables.items()}}
            return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)
    return value


def test_snapstart_is_off_by_default_and_on_means_published_versions():
    param = TEMPLATE["Parameters"]["SnapStart"]
    assert param["Default"] == "Off" and param["AllowedValues"] == ["Off", "On"]
    assert TEMPLATE["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "On"]}
    for name in FUNCTIONS:
        props = RESOURCES[name]["Properties"]
        assert props["SnapStart"] == {"ApplyOn": {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}}
        # SnapStart exists only on published versions; every change must publish one.
        assert props["AutoPublishAlias"] == "live" and props["AutoPublishAliasAllProperties"] is True
    # SnapStart does not support /tmp over 512 MB: the parameters cannot ask for both.
    rule = TEMPLATE["Rules"]["SnapStartNeedsTmpAt512MB"]
    for params, applies in [
        ({"SnapStart": "On", "ModelS3Uri": "s3://m/p"}, True),
        ({"SnapStart": "On", "ApiModelS3Uri": "s3://m/p"}, True),
        ({"SnapStart": "On"}, False),
        ({"SnapStart": "Off", "ModelS3Uri": "s3://m/p", "ApiModelS3Uri": "s3://m/p"}, False),
    ]:
        assert bool(_evaluate(rule["RuleCondition"], params)) is applies, params
    assert [a["Assert"] for a in rule["Assertions"]] == [{"Fn::Equals": [{"Ref": "ModelTmpStorageMB"}, "512"]}]


ALARMS = {
    "DeadLetterAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["TaggingDeadLetterQueue", "QueueName"]}},
    ),
    "CaptionDeadLetterAlarm": (  # Captions=On only
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["CaptionDeadLetterQueue", "QueueName"]}},
    ),
    "QueueAgeAlarm": (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"QueueName": {"Fn::GetAtt": ["TaggingQueue", "QueueName"]}},
    ),
    "CaptionQueueAgeAlarm": (  # Captions=On only
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"QueueName": {"Fn::GetAtt": ["CaptionQueue", "QueueName"]}},
    ),
    "TaggerErrorsAlarm": ("AWS/Lambda", "Errors", {"FunctionName": {"Ref": "TaggerFunction"}}),
    "TaggerThrottlesAlarm": ("AWS/Lambda", "Throttles", {"FunctionName": {"Ref": "TaggerFunction"}}),
    "Api5xxAlarm": (
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": RESOURCES["Api"]["Properties"]["Name"], "Stage": RESOURCES["Api"]["Properties"]["StageName"]},
    ),
}


def test_every_alarm_watches_its_metric_and_notifies_only_with_an_email():
    alarms = {name for name, res in RESOURCES.items() if res["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms == set(ALARMS)
    notify = {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], NO_VALUE]}
    for name, (namespace, metric, dimensions) in ALARMS.items():
        props = RESOURCES[name]["Properties"]
        assert (props["Namespace"], props["MetricName"]) == (namespace, metric), name
        assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == dimensions, name
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        ages = ("QueueAgeAlarm", "CaptionQueueAgeAlarm")
        assert props["Threshold"] == ({"Ref": "QueueAgeAlarmSeconds"} if name in ages else 0)
        assert props["TreatMissingData"] == "notBreaching"
        assert props["AlarmActions"] == props["OKActions"] == notify, name
        # The topic policy admits alarms named after the stack only.
        assert props["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-")
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    topic, policy = RESOURCES["AlarmTopic"], RESOURCES["AlarmTopicPolicy"]
    assert topic["Condition"] == policy["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Resource"] == {"Ref": "AlarmTopic"}
        assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert [o for o in TEMPLATE["Outputs"].values() if o.get("Condition") == "HasAlarmEmail"]


def test_dashboard_is_valid_json_and_shows_every_powertools_metric():
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    params = TEMPLATE["Parameters"]

    def dummy(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name.startswith("AWS::") or name.split(".")[0] in params or name.split(".")[0] in RESOURCES, name
        return "1" if params.get(name, {}).get("Type") == "Number" else name

    def substituted(text: str) -> str:
        return re.sub(r"\$\{([^}]*)\}", dummy, text)

    dashboard = json.loads(substituted(body))
    metrics = [m for w in dashboard["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    named = [m for m in metrics if isinstance(m[0], str)]
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "cliptag"
    powertools = {m[1] for m in named if m[0] == "cliptag" and m[2:4] == ["service", "tagger"]}
    assert powertools == set(POWERTOOLS_METRICS)
    shown = {(m[0], m[1], tuple(m[2:-1] if isinstance(m[-1], dict) else m[2:])) for m in named}
    queues = ("TaggingQueue.QueueName", "TaggingDeadLetterQueue.QueueName")
    api = ("ApiName", substituted(RESOURCES["Api"]["Properties"]["Name"]["Fn::Sub"]), "Stage", "v1")
    expected = {
        ("AWS/SQS", m, ("QueueName", q))
        for m in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage")
        for q in queues
    }
    expected |= {
        ("AWS/Lambda", m, ("FunctionName", "TaggerFunction"))
        for m in ("Duration", "Errors", "Throttles", "ConcurrentExecutions")
    }
    expected |= {("AWS/ApiGateway", m, api) for m in ("Count", "Latency", "4XXError", "5XXError")}
    assert expected <= shown


def test_vector_actions_reach_only_the_stacks_index():
    """The tagger may write and the API may read vectors in the one index, nothing else."""
    for name, actions in (
        ("TaggerFunction", [{"PutVectors", "DeleteVectors"}, {"QueryVectors", "GetVectors"}]),
        ("ApiFunction", [{"QueryVectors", "GetVectors"}]),
    ):
        found = _statements(name, model_bucket=True, near_duplicates=True)
        vectors = [s for s in found if any(a.startswith("s3vectors:") for a in _list(s["Action"]))]
        assert [{a.split(":")[1] for a in _list(s["Action"])} for s in vectors] == actions
        assert all(s["Resource"] == {"Fn::GetAtt": ["ImageVectors", "IndexArn"]} for s in vectors)
    assert "s3vectors:PutVectors" not in _actions("ApiFunction", near_duplicates=True)


def test_the_search_index_has_the_models_dimension_and_cosine_distance():
    index = RESOURCES["ImageVectors"]["Properties"]
    assert RESOURCES["ImageVectors"]["Type"] == "AWS::S3Vectors::Index"
    assert RESOURCES["VectorBucket"]["Type"] == "AWS::S3Vectors::VectorBucket"
    assert index["VectorBucketArn"] == {"Fn::GetAtt": ["VectorBucket", "VectorBucketArn"]}
    assert (
        index["Dimension"] == {"Ref": "EmbeddingDimension"}
        and TEMPLATE["Parameters"]["EmbeddingDimension"]["Default"] == 512
    )
    assert (index["DataType"], index["DistanceMetric"]) == ("float32", "cosine")
    # The dimension is in the name: a model of another dimension gets a new index, not an error.
    assert "${EmbeddingDimension}" in index["IndexName"]["Fn::Sub"]
    from cliptag.adapters.s3vectors import NON_FILTERABLE

    assert index["MetadataConfiguration"]["NonFilterableMetadataKeys"] == list(NON_FILTERABLE)
    assert TEMPLATE["Parameters"]["NearDuplicates"]["Default"] == "Off"


def test_each_function_gets_only_its_own_model_layer():
    assert "Layers" not in TEMPLATE["Globals"]["Function"]
    places = {"Fn::If": ["PlaceTagsOn", {"Ref": "PlacesLayer"}, {"Ref": "AWS::NoValue"}]}  # PlaceTags=On only
    tagger_layers = [{"Ref": "RuntimeLayer"}, {"Ref": "ModelLayer"}, places]
    assert RESOURCES["TaggerFunction"]["Properties"]["Layers"] == tagger_layers
    assert RESOURCES["PlacesLayer"]["Condition"] == "PlaceTagsOn"
    api_layers = [{"Ref": "RuntimeLayer"}, {"Ref": "TextLayer"}, {"Ref": "ApiModelLayer"}]
    assert RESOURCES["ApiFunction"]["Properties"]["Layers"] == api_layers  # tokenizers: the API's only


def test_local_stack_template_keeps_only_storage_and_resolvable_conditions():
    """moto's CloudFormation gets the storage resources and the existing bucket's EventBridge rule;
    every Condition it gets must resolve there."""
    local, notification = local_template(TEMPLATE)
    assert {r["Type"] for r in local["Resources"].values()} <= {
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::Events::Rule",
    }
    assert "Rules" not in local and notification["QueueConfigurations"]

    def refs(node: Any) -> list[tuple[str, str]]:
        if isinstance(node, dict):
            found = [(k, v) for k, v in node.items() if k in ("Ref", "Condition") and isinstance(v, str)]
            return found + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    for kind, name in refs(local["Conditions"]):
        assert name in (local["Parameters"] if kind == "Ref" else local["Conditions"]), name


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


def test_an_existing_bucket_is_never_created_nor_reconfigured_and_its_events_come_through_eventbridge():
    conditions = TEMPLATE["Conditions"]
    assert conditions["CreatesBucket"] == {"Fn::Equals": [{"Ref": "ExistingBucketName"}, ""]}
    assert RESOURCES["ImagesBucket"]["Condition"] == "CreatesBucket"  # notifications live on it only
    assert RESOURCES["ImagesBucketPolicy"]["Condition"] == "CreatesBucket"
    rule = RESOURCES["ExistingBucketEventsRule"]
    assert rule["Condition"] == "UsesExistingBucket"
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and set(pattern["detail-type"]) == {"Object Created", "Object Deleted"}
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "ExistingBucketName"}]
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": ["TaggingQueue", "Arn"]}]
    # The queue admits the bucket's notifications or the rule, each only in its own mode.
    (statement,) = RESOURCES["TaggingQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    by_s3, by_rule = statement["Fn::If"][1], statement["Fn::If"][2]
    assert statement["Fn::If"][0] == "CreatesBucket"
    assert by_s3["Principal"] == {"Service": "s3.amazonaws.com"}
    assert by_rule["Principal"] == {"Service": "events.amazonaws.com"}
    assert by_rule["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["ExistingBucketEventsRule", "Arn"]}


def test_the_tagger_reads_only_the_tagged_bucket_under_its_prefix():
    (read,) = [s for s in _statements("TaggerFunction") if s.get("Sid") == "ReadUploads"]
    template, names = read["Resource"]["Fn::Sub"]
    assert template.endswith(":s3:::${Bucket}/${KeyPrefix}*")
    assert names["Bucket"]["Fn::If"][0] == "CreatesBucket" and names["Bucket"]["Fn::If"][2] == {
        "Ref": "ExistingBucketName"
    }


def test_failures_have_a_sparse_index_the_api_may_query():
    table = RESOURCES["TagsTable"]["Properties"]
    (failures,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "GSI2"]
    assert [k["AttributeName"] for k in failures["KeySchema"]] == ["GSI2PK", "GSI2SK"]
    (read,) = [s for s in _statements("ApiFunction") if s.get("Sid") == "ReadTags"]
    assert {"Fn::Sub": "${TagsTable.Arn}/index/GSI2"} in read["Resource"]
