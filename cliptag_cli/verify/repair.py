"""Repairs, each with the machinery that already exists, each conditional on what verify saw.

| kind            | repair                                                                          |
|-----------------|---------------------------------------------------------------------------------|
| missing-record  | a recheck request to the tagging queue with what the listing saw (tags it)       |
| gone-object     | a recheck request naming the record's ETag (the tagger finds it gone: tombstone) |
| changed-object  | a recheck request with the listing and the record's ETag (tags the new bytes)    |
| tag-items       | a re-tag request (converges the items; no model, no S3 read); strays deleted     |
| missing-vector  | a re-tag request (puts the stored embedding's vector)                            |
| orphan-vector   | DeleteVectors, after reading again that no live record took it meanwhile         |
| stale-duplicate | the DUP item and its mirror deleted                                              |

Requests through the queue go paced (``QueueFeeder``, ``--max-backlog``) and the tagger applies
them only over the state they name (cliptag.ordering): a concurrent upload or delete wins. No
repair runs the model for an unchanged object: re-tags re-score stored embeddings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb.items import object_key
from cliptag.adapters.notifications import RETAG_MAX_OBJECTS, recheck_body, retag_body
from cliptag.ordering import Seen

from cliptag_cli import prices
from cliptag_cli.feed import QueueFeeder
from cliptag_cli.verify.drift import Confirm, findings
from cliptag_cli.verify.snapshot import Snapshot

RECHECKS = ("missing-record", "gone-object", "changed-object")
RETAGS = ("tag-items", "missing-vector")


@dataclass
class Repairs:
    snapshot: Snapshot
    bucket: str
    table: Any  # cliptag.adapters.dynamodb.Table
    feeder: QueueFeeder | None  # None: count what would be done, do nothing
    index: Any = None  # cliptag.adapters.s3vectors.S3VectorIndex, when the stack has one
    confirm: Confirm | None = None  # read again right before a direct delete (drift.Confirm)
    done: Counter[str] = field(default_factory=Counter)

    def run(self, progress: Any = None) -> Counter[str]:
        for kind in RECHECKS:
            found = [f.key for f in findings(self.snapshot, kind, unrepaired=True)]
            self._send_bodies([self._recheck(key) for key in found], "recheck requests", found, progress, kind)
        retags = sorted({f.key for kind in RETAGS for f in findings(self.snapshot, kind, unrepaired=True)})
        retags = [k for k in retags if self._status(k) == "tagged"]
        bodies = [
            retag_body([(self.bucket, k) for k in retags[at : at + RETAG_MAX_OBJECTS]])
            for at in range(0, len(retags), RETAG_MAX_OBJECTS)
        ]
        self._send_bodies(bodies, "re-tag requests", [*retags], progress)
        self._strays(progress)
        self._orphans(progress)
        self._duplicates(progress)
        return self.done

    def estimated_cost(self) -> dict[str, float]:
        sent = self.done["recheck requests"] + self.done["re-tag requests"]
        return {
            "messages": -(-sent // 10) * 0.3 * prices.SQS_PER_REQUEST,
            "tagging (rechecks)": self.done["recheck requests"] * prices.TAGGING_PER_IMAGE,
            "re-tags": self.done["re-tagged objects"] * prices.RETAG_LAMBDA_PER_OBJECT,
            "deletes": self.done["items deleted"] * prices.DYNAMODB_PER_WRU,
        }

    # -- each kind -------------------------------------------------------------------------
    def _recheck(self, key: str) -> str:
        """What the listing saw of ``key`` and the ETag of the record then (if it was live)."""
        row = self.snapshot.db.execute(
            "SELECT o.etag, o.size, o.last_modified, r.etag, r.status FROM (SELECT ? AS key) k "
            "LEFT JOIN objects o ON o.key = k.key LEFT JOIN records r ON r.key = k.key",
            (key,),
        ).fetchone()
        listed_etag, size, modified, record_etag, status = row
        live_record = record_etag if status in ("tagged", "failed") else ""
        seen = Seen(listed_etag or "", size or 0, modified or 0.0, "", live_record or "")
        return recheck_body(self.bucket, key, seen)

    def _send_bodies(
        self, bodies: list[str], what: str, repaired: list[str], progress: Any, kind: str | None = None
    ) -> None:
        if not bodies:
            return
        if self.feeder is not None:
            self.feeder.send(bodies)
            self._mark(repaired, kind)
        self.done[what] += len(bodies)
        if what == "re-tag requests":
            self.done["re-tagged objects"] += len(repaired)
        if progress is not None:
            progress.update(len(repaired))

    def _strays(self, progress: Any) -> None:
        """TAG items of a record that is not tagged (failed, a tombstone, none): deleted."""
        strays = [
            f.key for f in findings(self.snapshot, "tag-items", unrepaired=True) if self._status(f.key) != "tagged"
        ]
        doomed = [
            object_key(keys.object_ref(self.bucket, key), keys.tag_sk(tag))
            for key in strays
            for (tag,) in self.snapshot.db.execute("SELECT tag FROM tag_items WHERE key = ?", (key,))
        ]
        self._delete_items(doomed, strays, "tag-items", progress)

    def _orphans(self, progress: Any) -> None:
        orphans = [f.key for f in findings(self.snapshot, "orphan-vector", unrepaired=True)]
        if self.confirm is not None:  # a record (and its vector) may have arrived since the report
            orphans = [key for key in orphans if self.confirm("orphan-vector", key)]
        if not orphans or self.index is None:
            return
        if self.feeder is not None:
            self.index.delete_many([keys.object_ref(self.bucket, key) for key in orphans])
            self._mark(orphans, "orphan-vector")
        self.done["vectors deleted"] += len(orphans)
        if progress is not None:
            progress.update(len(orphans))

    def _duplicates(self, progress: Any) -> None:
        stale = [f.key for f in findings(self.snapshot, "stale-duplicate", unrepaired=True)]
        doomed = []
        for pair in stale:
            key, sk = pair.split("\0", 1)
            other = self.snapshot.db.execute("SELECT other_key FROM duplicates WHERE key = ? AND sk = ?", (key, sk))
            (other_key,) = other.fetchone() or ("",)
            doomed.append(object_key(keys.object_ref(self.bucket, key), sk))
            if other_key:  # its mirror under the other object
                mirror = keys.duplicate_sk(keys.object_ref(self.bucket, key))
                doomed.append(object_key(keys.object_ref(self.bucket, other_key), mirror))
        self._delete_items(doomed, stale, "stale-duplicate", progress)

    def _delete_items(self, doomed: list[dict[str, str]], repaired: list[str], kind: str, progress: Any) -> None:
        if not doomed:
            return
        if self.feeder is not None:
            self.table.batch_write([], doomed)
            self._mark(repaired, kind)
        self.done["items deleted"] += len(doomed)
        if progress is not None:
            progress.update(len(repaired))

    def _status(self, key: str) -> str:
        row = self.snapshot.db.execute("SELECT status FROM records WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else ""

    def _mark(self, repaired: list[str], kind: str | None) -> None:
        """Done: an interrupted repair continues after it (each repair is idempotent anyway)."""
        kinds = [kind] if kind else list(RETAGS)
        self.snapshot.db.executemany(
            "UPDATE findings SET repaired = 1 WHERE kind = ? AND key = ?", [(k, key) for k in kinds for key in repaired]
        )
        self.snapshot.db.commit()
