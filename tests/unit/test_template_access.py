"""Who may decide on tags (docs/corrections.md): the API's one write and the callers' two policies."""

from __future__ import annotations

from tests.unit.test_template import RESOURCES, _statements


def test_the_api_writes_only_decisions_and_only_principals_given_the_write_policy_may_ask():
    """Its one write is UpdateItem on content partitions (IMG#...); callers get reading and
    deciding as two managed policies, so a read-only principal cannot confirm or reject."""
    (update,) = [st for st in _statements("ApiFunction") if st["Action"] == "dynamodb:UpdateItem"]
    assert update["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["IMG#*"], "dynamodb:Attributes": ["PK", "SK", "tag#*"]}
    }
    (send,) = [st for st in _statements("ApiFunction") if st["Action"] == "sqs:SendMessage"]
    assert send["Resource"] == {"Fn::GetAtt": ["TaggingQueue", "Arn"]}
    read = RESOURCES["ApiReadAccess"]["Properties"]["PolicyDocument"]["Statement"]
    write = RESOURCES["ApiWriteAccess"]["Properties"]["PolicyDocument"]["Statement"]
    assert [st["Resource"]["Fn::Sub"].split("/v1/")[1] for st in read] == ["GET/*"]
    assert [r["Fn::Sub"].split("/v1/")[1] for st in write for r in st["Resource"]] == [
        "PUT/images/*/tags/*",
        "DELETE/images/*/tags/*",
    ]
    events = RESOURCES["ApiFunction"]["Properties"]["Events"]
    methods = {e["Properties"]["Method"] for e in events.values() if e["Properties"]["Path"] == "/images/{key+}"}
    assert methods == {"GET", "PUT", "DELETE", "OPTIONS"}
    (content_index,) = [
        i for i in RESOURCES["TagsTable"]["Properties"]["GlobalSecondaryIndexes"] if i["IndexName"] == "GSI3"
    ]
    assert content_index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
