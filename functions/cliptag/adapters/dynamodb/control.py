"""Control items: what the deployed tagger runs, and the checkpoints of resumable jobs."""

from __future__ import annotations

from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb import items
from cliptag.adapters.dynamodb.table import Table
from cliptag.records import Deployment


class DynamoDeployments:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self) -> Deployment | None:
        found = self.table.batch_get([keys.DEPLOYMENT])  # BatchGetItem: the tagger's role has no GetItem
        return items.deployment_from_item(found[0]) if found else None

    def record(self, deployment: Deployment) -> bool:
        """Store what this tagger runs, when it differs from what is stored (a read per cold
        start, a write per deploy). True when it was written."""
        if self.get() == deployment:
            return False
        return self.table.put(items.deployment_item(deployment))


class DynamoCheckpoints:
    """A job's progress (a backfill's last listed key, a re-tag's scan position), so an
    interrupted run continues where it stopped."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def load(self, job: str) -> dict[str, Any] | None:
        item = self.table.get(keys.job_key(job))
        return dict(item["state"]) if item and "state" in item else None

    def save(self, job: str, state: dict[str, Any]) -> None:
        self.table.put({**keys.job_key(job), "state": state})

    def clear(self, job: str) -> None:
        self.table.delete(keys.job_key(job))
