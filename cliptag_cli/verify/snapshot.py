"""What the three stores hold, walked once into a SQLite file: the bucket's listing (or an S3
Inventory report), the table's records, TAG and DUP items, the search index's vectors, and with
WriteBack=Sidecar the sidecars under the SidecarPrefix.

A library of millions of objects does not fit in memory as Python sets; on disk, SQL joins compare
the three. The file keeps each walk's position, so an interrupted verify continues where it
stopped (on this machine); a file made for another stack, filter or deployment, or more than a day
ago, is started afresh. The walks are not one instant: what changed while they ran is judged by
its time (``drift.py``) and every repair is conditional on what it saw.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cliptag import keys
from cliptag.writeback import SIDECAR_SUFFIX, is_sidecar

SCHEMA = """
CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY CHECK (id = 1), basis TEXT, started REAL, positions TEXT);
CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, etag TEXT, size INTEGER, last_modified REAL);
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, status TEXT, etag TEXT, content_id TEXT,
    tags TEXT, last_modified INTEGER, updated_at INTEGER, model TEXT);
CREATE TABLE IF NOT EXISTS tag_items (key TEXT, tag TEXT, sort_key TEXT, space TEXT, PRIMARY KEY (key, tag));
CREATE TABLE IF NOT EXISTS duplicates (key TEXT, sk TEXT, other_key TEXT, content_id TEXT, other_content_id TEXT,
    PRIMARY KEY (key, sk));
CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector_key TEXT, content_id TEXT);
CREATE TABLE IF NOT EXISTS sidecars (key TEXT PRIMARY KEY, sidecar_key TEXT, etag TEXT, last_modified REAL);
CREATE TABLE IF NOT EXISTS findings (kind TEXT, key TEXT, detail TEXT, repaired INTEGER DEFAULT 0,
    PRIMARY KEY (kind, key));
"""
MAX_AGE_S = 24 * 3600  # an unfinished walk older than this is stale: start afresh
PHASES = ("objects", "table", "vectors", "sidecars")
# Only what the comparison reads (a Scan is billed for whole items anyway: this saves transfer).
SCAN_NAMES = {
    "#pk": keys.PK,
    "#sk": keys.SK,
    "#st": "status",
    "#k": "key",
    "#gs": keys.TAG_INDEX_SK,
    "#gp": keys.TAG_INDEX_PK,
    "#m": "model",
}
SCAN_FIELDS = (
    "#pk, #sk, #st, #k, etag, content_id, tags, last_modified, updated_at, #gs, #gp, #m, other_ref, other_content_id"
)
SCHEMA_VERSION = "4"  # in each walk's basis: a walk saved by another schema starts afresh


@dataclass
class Scope:
    """The part of the library a verify looks at: one bucket, a prefix and suffixes."""

    bucket: str
    prefix: str = ""
    suffixes: tuple[str, ...] = ()
    sidecars: str = ""  # the stack's SidecarPrefix: what is under it is not a photo

    def holds(self, key: str) -> bool:
        return (
            key.startswith(self.prefix)
            and all(key.endswith(s) for s in self.suffixes)
            and not is_sidecar(key, self.sidecars)
        )

    def key_of(self, ref: str) -> str | None:
        """The key of a ref in this scope (None: another bucket, or outside the filter)."""
        bucket, key = keys.split_ref(ref)
        return key if bucket == self.bucket and self.holds(key) else None


@dataclass
class Counts:
    listed: int = 0
    list_requests: int = 0
    scanned: int = 0  # items read by the Scan
    scan_bytes: int = 0  # their size, as DynamoDB bills a Scan (estimated from what came back)
    scan_requests: int = 0
    vectors: int = 0
    vector_requests: int = 0
    sidecars: int = 0
    sidecar_requests: int = 0
    pages: dict[str, int] = field(default_factory=dict)


class Snapshot:
    def __init__(self, path: Path, basis: dict[str, str], fresh: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.basis = path, basis
        if fresh and path.exists():
            path.unlink()
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)
        row = self.db.execute("SELECT basis, started, positions FROM run").fetchone()
        if row and (json.loads(row[0]) != basis or time.time() - row[1] > MAX_AGE_S):
            why = "another stack, filter or deployment" if json.loads(row[0]) != basis else "more than a day ago"
            print(f"verify: the unfinished walk in {path} was made for {why}; starting afresh", file=sys.stderr)
            self.db.close()
            path.unlink()
            self.db = sqlite3.connect(path)
            self.db.executescript(SCHEMA)
            row = None
        if row is None:
            self.db.execute("INSERT INTO run VALUES (1, ?, ?, '{}')", (json.dumps(basis), time.time()))
            self.db.commit()
        elif any(json.loads(row[2]).values()):
            print(f"verify: continuing the walk saved in {path}", file=sys.stderr)
        self.counts = Counts()

    @property
    def started(self) -> float:
        return float(self.db.execute("SELECT started FROM run").fetchone()[0])

    def position(self, phase: str) -> Any:
        return json.loads(self.db.execute("SELECT positions FROM run").fetchone()[0]).get(phase)

    def _advance(self, phase: str, position: Any) -> None:
        positions = json.loads(self.db.execute("SELECT positions FROM run").fetchone()[0])
        positions[phase] = position
        self.db.execute("UPDATE run SET positions = ?", (json.dumps(positions),))
        self.db.commit()  # the page's rows and the position after it, together

    def judged(self, pending: int) -> None:
        """The findings are stored (with ``pending`` changes not judged): a resumed run repairs
        what is left of them instead of judging an old walk again."""
        self._advance("judged", pending)

    def done(self, phase: str) -> bool:
        return bool(self.position(phase) == "done")

    # -- the walks ---------------------------------------------------------------------------
    def add_objects(self, pages: Iterator[Any], scope: Scope, progress: Any = None) -> None:
        """Pages of ``cliptag_cli.backfill.Listed`` objects, each with its resume position."""
        for page in pages:
            rows = [(o.key, o.etag, o.size, o.last_modified) for o in page.objects if scope.holds(o.key)]
            self.db.executemany("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)", rows)
            self.counts.listed += len(page.objects)
            self.counts.list_requests += 1
            self._advance("objects", page.resume)
            if progress is not None:
                progress.update(len(page.objects))
        self._advance("objects", "done")

    def add_table(self, table: Any, scope: Scope, page_size: int | None = None, progress: Any = None) -> None:
        """Scan the table page by page; keep the records, TAG and DUP items of ``scope``."""
        start = self.position("table")
        while True:
            found, start, read = table.scan_page(
                start, page_size, ProjectionExpression=SCAN_FIELDS, ExpressionAttributeNames=SCAN_NAMES
            )
            self._add_items(found, scope)
            self.counts.scanned += read
            self.counts.scan_bytes += sum(len(json.dumps(item, default=str)) for item in found)
            self.counts.scan_requests += 1
            self._advance("table", start or "done")
            if progress is not None:
                progress.update(read)
            if start is None:
                return

    def _add_items(self, items: list[dict[str, Any]], scope: Scope) -> None:
        for item in items:
            ref = keys.ref_from_object_pk(str(item.get(keys.PK, "")))
            key = scope.key_of(ref) if ref else None
            if key is None:
                continue
            sk = str(item[keys.SK])
            if sk == keys.META:
                values = (item.get("status"), item.get("etag") or "", item.get("content_id") or "")
                times = (int(item.get("last_modified") or 0), int(item.get("updated_at") or 0))
                # tag -> [score, confirmed by a person]: both decide the tag's index sort key
                tags = json.dumps(
                    {t["tag"]: [float(t["score"]), t.get("source") == "person"] for t in item.get("tags") or []}
                )
                record = (key, *values, tags, *times, item.get("model") or "")
                self.db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", record)
            elif (tag := keys.tag_from_sk(sk)) is not None:
                space = keys.space_of_index_pk(str(item.get(keys.TAG_INDEX_PK, "")))
                tag_item = (key, tag, item.get(keys.TAG_INDEX_SK, ""), space)
                self.db.execute("INSERT OR REPLACE INTO tag_items VALUES (?, ?, ?, ?)", tag_item)
            elif sk.startswith(keys.DUPLICATE_PREFIX):
                other = scope.key_of(str(item.get("other_ref", ""))) or ""
                row = (key, sk, other, item.get("content_id") or "", item.get("other_content_id") or "")
                self.db.execute("INSERT OR REPLACE INTO duplicates VALUES (?, ?, ?, ?, ?)", row)

    def add_vectors(self, index: Any, scope: Scope, progress: Any = None) -> None:
        """The index's vectors (key, ref and content id from their metadata), page by page."""
        token = self.position("vectors")
        while True:
            page, token = index.listing(token)
            rows = [(key, vector_key, cid) for vector_key, ref, cid in page if (key := scope.key_of(ref)) is not None]
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
            self.counts.vectors += len(page)
            self.counts.vector_requests += 1
            self._advance("vectors", token or "done")
            if progress is not None:
                progress.update(len(page))
            if not token:
                return

    def add_sidecars(self, pages: Iterator[Any], scope: Scope, progress: Any = None) -> None:
        """Pages of the listing under the SidecarPrefix (``Listed`` objects): each sidecar under
        the photo key it belongs to, where that key is in ``scope``."""
        for page in pages:
            rows = []
            for o in page.objects:
                photo = o.key[len(scope.sidecars) :].removesuffix(SIDECAR_SUFFIX)
                if o.key.endswith(SIDECAR_SUFFIX) and scope.holds(photo):
                    rows.append((photo, o.key, o.etag, o.last_modified))
            self.db.executemany("INSERT OR REPLACE INTO sidecars VALUES (?, ?, ?, ?)", rows)
            self.counts.sidecars += len(page.objects)
            self.counts.sidecar_requests += 1
            self._advance("sidecars", page.resume)
            if progress is not None:
                progress.update(len(page.objects))
        self._advance("sidecars", "done")

    def close(self, remove: bool = False) -> None:
        self.db.close()
        if remove:
            self.path.unlink(missing_ok=True)
