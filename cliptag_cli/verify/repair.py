"""Repairs, each with the machinery that already exists: the tagger's own requests.

| kind            | repair                                                                          |
|-----------------|---------------------------------------------------------------------------------|
| missing-record  | a recheck request with what the listing saw: the tagger tags it                 |
| gone-object     | a recheck request: the tagger finds it gone, tombstones it, removes its vector  |
| changed-object  | a recheck request with what the listing saw: the new bytes are tagged           |
| tag-items       | a re-tag request (a tagged record: converges the items; no model, no S3 read),   |
|                 | else a recheck request (records what the key holds; converging drops the rest)  |
| missing-vector  | a re-tag request (puts the stored embedding's vector)                            |
| orphan-vector   | a recheck request: the key's state is recorded again, its vector with it         |
| stale-duplicate | the DUP item and its mirror deleted, each only if it still names what was seen   |
| missing-sidecar | a re-tag request (the tagger's write-back writes what is missing)                |
| orphan-sidecar  | the sidecar deleted, if the photo is still gone and its record has no tags      |

Requests go through the tagging queue paced (``QueueFeeder``, ``--max-backlog``) and the tagger
applies them only over the record it read before the object (cliptag.ordering): an upload or a
delete meanwhile wins, and a repeated repair changes nothing. No repair runs the model for an
unchanged object: re-tags re-score stored embeddings, rechecks of unchanged bytes reuse theirs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb.items import object_key
from cliptag.adapters.notifications import RETAG_MAX_OBJECTS, recheck_body, retag_body
from cliptag.ordering import Seen
from cliptag.ports import MetadataStore

from cliptag_cli import prices
from cliptag_cli.feed import QueueFeeder
from cliptag_cli.verify.drift import Confirm, findings
from cliptag_cli.verify.snapshot import Snapshot

RECHECKS = ("missing-record", "gone-object", "changed-object", "orphan-vector")
RETAGS = ("tag-items", "missing-vector", "missing-sidecar")


@dataclass
class Repairs:
    snapshot: Snapshot
    bucket: str
    table: Any  # cliptag.adapters.dynamodb.Table
    feeder: QueueFeeder | None  # None: count what would be done, do nothing
    store: MetadataStore | None = None  # S3 HEADs and deletes, for orphan sidecars
    confirm: Confirm | None = None  # (kind, key) -> still so, read now
    done: Counter[str] = field(default_factory=Counter)

    def run(self, progress: Any = None) -> Counter[str]:
        retags: list[str] = []
        rechecks: dict[str, list[str]] = {}  # key -> the kinds it repairs
        for kind in (*RECHECKS, *RETAGS):
            for f in findings(self.snapshot, kind, unrepaired=True):
                if kind in RETAGS and self._status(f.key) == "tagged":
                    retags.append(f.key)
                else:
                    rechecks.setdefault(f.key, []).append(kind)
        bodies = [recheck_body(self.bucket, key, self._listed(key)) for key in rechecks]
        self._send(bodies, "recheck requests", [(k, key) for key, kinds in rechecks.items() for k in kinds], progress)
        unique = sorted(set(retags))
        bodies = [
            retag_body([(self.bucket, k) for k in unique[at : at + RETAG_MAX_OBJECTS]])
            for at in range(0, len(unique), RETAG_MAX_OBJECTS)
        ]
        self._send(bodies, "re-tag requests", [(k, key) for key in unique for k in RETAGS], progress)
        self.done["re-tagged objects"] += len(unique)
        self._duplicates(progress)
        self._orphan_sidecars(progress)
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
    def _listed(self, key: str) -> Seen | None:
        """What the listing showed of ``key`` (the tagger reads only those bytes), if anything."""
        row = self.snapshot.db.execute("SELECT etag, size, last_modified FROM objects WHERE key = ?", (key,)).fetchone()
        return Seen(row[0], row[1], row[2]) if row else None

    def _send(self, bodies: list[str], what: str, repaired: list[tuple[str, str]], progress: Any) -> None:
        if not bodies:
            return
        if self.feeder is not None:
            self.feeder.send(bodies)
            self._mark(repaired)
        self.done[what] += len(bodies)
        if progress is not None:
            progress.update(len(bodies))

    def _duplicates(self, progress: Any) -> None:
        """Each stale DUP item and its mirror, deleted only while it still names the contents it
        was found with (a pair recorded again meanwhile stays)."""
        stale = [f.key for f in findings(self.snapshot, "stale-duplicate", unrepaired=True)]
        for pair in stale:
            key, sk = pair.split("\0", 1)
            row = self.snapshot.db.execute(
                "SELECT other_key, content_id, other_content_id FROM duplicates WHERE key = ? AND sk = ?", (key, sk)
            ).fetchone()
            if row is None:
                continue
            other, content, other_content = row
            doomed = [(keys.object_ref(self.bucket, key), sk, content, other_content)]
            if other:  # its mirror under the other object
                mirror = keys.duplicate_sk(keys.object_ref(self.bucket, key))
                doomed.append((keys.object_ref(self.bucket, other), mirror, other_content, content))
            if self.feeder is not None:
                for ref, item_sk, mine, theirs in doomed:
                    self.table.delete_if(
                        object_key(ref, item_sk),
                        "content_id = :c AND other_content_id = :o",
                        {":c": mine, ":o": theirs},
                    )
                self._mark([("stale-duplicate", pair)])
            self.done["items deleted"] += len(doomed)
            if progress is not None:
                progress.update(1)

    def _orphan_sidecars(self, progress: Any) -> None:
        """Each orphan sidecar deleted, if its photo is still gone (a HEAD) and its record still
        has no tags (read again): a photo uploaded or tagged meanwhile keeps what its write-back
        wrote."""
        store = self.store  # set whenever sidecars are compared
        for f in findings(self.snapshot, "orphan-sidecar", unrepaired=True):
            row = self.snapshot.db.execute("SELECT sidecar_key FROM sidecars WHERE key = ?", (f.key,)).fetchone()
            if row is None:
                continue
            if self.feeder is None:
                self.done["sidecars deleted"] += 1
            elif store is not None and store.head(self.bucket, f.key) is None and self._still_orphan(f.key):
                store.delete(self.bucket, row[0])
                self.done["sidecars deleted"] += 1
                self._mark([("orphan-sidecar", f.key)])
            else:
                self.done["orphan sidecars kept (their photo is back)"] += 1
                self._mark([("orphan-sidecar", f.key)])
            if progress is not None:
                progress.update(1)

    def _still_orphan(self, key: str) -> bool:
        return self.confirm is None or self.confirm("orphan-sidecar", key)

    def _status(self, key: str) -> str:
        row = self.snapshot.db.execute("SELECT status FROM records WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else ""

    def _mark(self, repaired: list[tuple[str, str]]) -> None:
        """Done: an interrupted repair continues after it (each repair is idempotent anyway)."""
        self.snapshot.db.executemany("UPDATE findings SET repaired = 1 WHERE kind = ? AND key = ?", repaired)
        self.snapshot.db.commit()
