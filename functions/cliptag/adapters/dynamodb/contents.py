"""The content cache (the ContentCache port): one item per content id under the deployed model.

The model key is bound here once, so every read, claim and write names the same model.
"""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from cliptag import keys
from cliptag.adapters.dynamodb import items
from cliptag.adapters.dynamodb.table import Table, condition_failed, typed
from cliptag.records import ContentRecord, TagScore


class DynamoContentCache:
    def __init__(self, table: Table, model_key: str) -> None:
        self.table = table
        self.model_key = model_key

    def get_many(self, content_ids: list[str]) -> dict[str, ContentRecord]:
        """What is cached for these contents: one BatchGetItem per 100 ids."""
        found = self.table.batch_get([items.content_key(c, self.model_key) for c in content_ids])  # read once each
        return dict(known for item in found if (known := items.content_from_item(item)) is not None)

    def put_many(self, contents: dict[str, ContentRecord]) -> None:
        """Cache embeddings (or failures) in one BatchWriteItem per 25.

        Unconditional and still idempotent: the same bytes under the same model always give the
        same item, so a second writer rewrites identical values.
        """
        self.table.batch_write([items.content_item(c, self.model_key, record) for c, record in contents.items()])

    def claim(self, content_id: str, owner: str, lease_s: int) -> bool:
        """Take the right to embed this content, so concurrent invocations never both infer.

        Succeeds when nobody embedded or claimed it, when a claim's lease ran out (its holder
        died), or when ``owner`` (the SQS message id, stable across redeliveries) holds it.
        """
        now = int(time.time())
        return self.table.put(
            items.claim_item(content_id, self.model_key, owner, now + lease_s),
            f"attribute_not_exists({keys.PK}) OR (#s = :claimed AND (lease_until < :now OR #o = :me))",
            names={"#s": "status", "#o": "owner"},
            values={":claimed": items.CLAIMED, ":now": now, ":me": owner},
        )

    def set_caption(self, content_id: str, caption: str, keywords: tuple[TagScore, ...]) -> bool:
        """The content's caption and keywords, written once: only onto an embedded content that
        has none yet (False: it has one, or is not embedded under this model)."""
        values = items.caption_values(caption, keywords)
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=typed(items.content_key(content_id, self.model_key)),
                UpdateExpression="SET caption = :c, keywords = :k",
                ConditionExpression="#s = :embedded AND attribute_not_exists(caption)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=typed(
                    {":c": values["caption"], ":k": values["keywords"], ":embedded": "embedded"}
                ),
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True
