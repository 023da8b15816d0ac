"""People's decisions on tags (the DecisionStore port): one item per content, one attribute per
tag, so a batch reads every content's decisions in one BatchGetItem and a decision is one
UpdateItem that never overwrites another tag's (~200 bytes a decision: a decision on every tag
of a 1,620-tag vocabulary stays inside DynamoDB's 400 KB item). The objects holding some bytes
come from the content index (GSI3, keys only, on the records' content_id)."""

from __future__ import annotations

from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb.table import Table, typed
from cliptag.records import Decision


def decisions_key(content_id: str) -> dict[str, str]:
    return {keys.PK: keys.content_pk(content_id), keys.SK: keys.decisions_sk()}


def _decision(tag: str, value: Any) -> Decision | None:
    if not isinstance(value, dict) or value.get("verdict") not in ("confirmed", "rejected"):
        return None  # not ours: ignored rather than trusted
    return Decision(tag, value["verdict"], str(value.get("by", "")), int(value.get("at", 0)))


def decisions_from_item(item: dict[str, Any]) -> dict[str, Decision]:
    found = {}
    for name, value in item.items():
        tag = keys.tag_from_decision_attribute(name)
        if tag is not None and (decision := _decision(tag, value)) is not None:
            found[tag] = decision
    return found


class DynamoDecisions:
    def __init__(self, table: Table) -> None:
        self.table = table

    def of_many(self, content_ids: list[str]) -> dict[str, dict[str, Decision]]:
        """Each content's decisions (tag -> decision); contents without any are left out. One
        consistent BatchGetItem per 100: a re-tag right after a decision sees it."""
        found = self.table.batch_get([decisions_key(c) for c in dict.fromkeys(content_ids)])
        return {
            keys.content_id_from_pk(item[keys.PK]): decided for item in found if (decided := decisions_from_item(item))
        }

    def record(self, content_id: str, decision: Decision) -> None:
        """Set this tag's decision on these bytes (a later one replaces it), never another's."""
        self.table.call(
            "update_item",
            TableName=self.table.name,
            Key=typed(decisions_key(content_id)),
            UpdateExpression="SET #d = :d",
            ExpressionAttributeNames={"#d": keys.decision_attribute(decision.tag)},
            ExpressionAttributeValues=typed(
                {":d": {"verdict": decision.verdict, "by": decision.by, "at": decision.at}}
            ),
        )

    def holders(self, content_id: str, limit: int) -> list[str]:
        """Refs of up to ``limit`` objects whose record holds these bytes (the content index is
        eventually consistent: an object recorded a moment ago may be missing). Near-duplicate
        items, which carry the attribute too, are skipped; a failed object is returned, and its
        re-tag does nothing."""
        refs: list[str] = []
        for item in self.table.query(f"{keys.CONTENT_INDEX_PK} = :c", {":c": content_id}, IndexName=keys.CONTENT_INDEX):
            ref = keys.ref_from_object_pk(str(item[keys.PK]))
            if item[keys.SK] == keys.META and ref is not None:
                refs.append(ref)
                if len(refs) >= limit:
                    break
        return refs
