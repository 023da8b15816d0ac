"""Drift: where the bucket, the table and the search index disagree, by kind, from a snapshot.

The walks take minutes on a large library while uploads go on, so what changed after the walks
began (minus ``settle`` seconds: events still in the queue or being retried) is not judged: it is
counted as pending. A vector that seems to have no record is read again before it is reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cliptag import keys
from cliptag.writeback import S3_MAX_KEY_BYTES, sidecar_key

from cliptag_cli.verify.snapshot import Snapshot

# kind -> what it means (the report's headings, in this order)
KINDS = {
    "missing-record": "objects without a record",
    "gone-object": "records (tagged or failed) of objects that are gone",
    "changed-object": "records of bytes the object no longer holds (its ETag changed)",
    "tag-items": "records whose TAG items disagree with META",
    "missing-vector": "tagged records without a vector (or with another content's)",
    "orphan-vector": "vectors without a live tagged record",
    "stale-duplicate": "near-duplicate items naming a gone or changed object",
    "missing-sidecar": "tagged records without their XMP sidecar (WriteBack=Sidecar)",
    "orphan-sidecar": "sidecars of photos that are gone (without a live record)",
}


@dataclass(frozen=True)
class Finding:
    kind: str
    key: str
    detail: str


Confirm = Callable[[str, str], bool]  # (kind, key) -> still so, read now (a consistent read)


def find(snapshot: Snapshot, settle_s: float, confirm: Confirm | None = None, as_of: float | None = None) -> int:
    """Compare the snapshot's three stores; store each finding in it. Returns the pending count
    (recent changes not judged). ``confirm``: reads again what may have changed or be half
    written since the walk (TAG items before their META, a vector before its record) before it is
    reported. ``as_of``: when the bucket's listing was true (an inventory report's date)."""
    still = confirm or (lambda kind, key: True)
    db = snapshot.db
    db.execute("DELETE FROM findings")
    cutoff = min(snapshot.started, as_of or snapshot.started) - settle_s
    pending = db.execute(
        "SELECT (SELECT COUNT(*) FROM objects WHERE last_modified > ?) + "
        "(SELECT COUNT(*) FROM records WHERE updated_at > ?) + (SELECT COUNT(*) FROM sidecars WHERE last_modified > ?)",
        (cutoff, cutoff, cutoff),
    ).fetchone()[0]
    findings = [
        *_missing_records(snapshot, cutoff),
        *_gone_or_changed(snapshot, cutoff),
        *_tag_items(snapshot, cutoff, still),
        *_vectors(snapshot, cutoff, still),
        *_duplicates(snapshot, cutoff),
        *_sidecars(snapshot, cutoff, still),
    ]
    db.executemany("INSERT OR REPLACE INTO findings (kind, key, detail) VALUES (?, ?, ?)", findings)
    db.commit()
    return int(pending)


def findings(snapshot: Snapshot, kind: str | None = None, unrepaired: bool = False) -> Iterator[Finding]:
    query = "SELECT kind, key, detail FROM findings WHERE (? IS NULL OR kind = ?)"
    query += " AND repaired = 0" if unrepaired else ""
    for row in snapshot.db.execute(query + " ORDER BY kind, key", (kind, kind)):
        yield Finding(*row)


def counts(snapshot: Snapshot) -> dict[str, int]:
    rows = snapshot.db.execute("SELECT kind, COUNT(*) FROM findings GROUP BY kind").fetchall()
    return {kind: n for kind, n in rows}


def _missing_records(snapshot: Snapshot, cutoff: float) -> Iterator[tuple[str, str, str]]:
    rows = snapshot.db.execute(
        "SELECT o.key, o.etag, r.status FROM objects o LEFT JOIN records r ON r.key = o.key "
        "WHERE (r.key IS NULL OR (r.status = 'deleted' AND r.updated_at <= ?)) AND o.last_modified <= ?",
        (cutoff, cutoff),
    )
    for key, etag, status in rows:
        yield "missing-record", key, f"ETag {etag}" + (", a tombstone" if status == "deleted" else "")


def _gone_or_changed(snapshot: Snapshot, cutoff: float) -> Iterator[tuple[str, str, str]]:
    rows = snapshot.db.execute(
        "SELECT r.key, r.status, r.etag, o.etag, o.last_modified FROM records r "
        "LEFT JOIN objects o ON o.key = r.key WHERE r.status IN ('tagged', 'failed') AND r.updated_at <= ?",
        (cutoff,),
    )
    for key, status, etag, listed, modified in rows:
        if listed is None:
            yield "gone-object", key, f"{status} record of ETag {etag or '?'}"
        elif etag and listed != etag and modified <= cutoff:  # a record without an ETag: never read
            yield "changed-object", key, f"record of ETag {etag}, the object has {listed}"


def _tag_items(snapshot: Snapshot, cutoff: float, still: Confirm) -> Iterator[tuple[str, str, str]]:
    db = snapshot.db
    bucket = _bucket(snapshot)
    legacy = snapshot.basis.get("legacy_model", "")
    records = db.execute("SELECT key, status, tags, model FROM records WHERE updated_at <= ?", (cutoff,))
    for key, status, tags_json, model in records.fetchall():
        ref, space = keys.object_ref(bucket, key), keys.tag_space(model or "", legacy or model or "")
        tags = json.loads(tags_json or "{}").items()
        wanted = {t: (keys.tag_index_sk(s, ref, confirmed), space) for t, (s, confirmed) in tags}
        if status != "tagged":
            wanted = {}
        found = db.execute("SELECT tag, sort_key, space FROM tag_items WHERE key = ?", (key,)).fetchall()
        stored = {tag: (sort_key, item_space or "") for tag, sort_key, item_space in found}
        if stored != wanted and still("tag-items", key):
            missing = sorted(wanted.keys() - stored.keys())
            extra = sorted(stored.keys() - wanted.keys())
            moved = sorted(t for t in wanted.keys() & stored.keys() if wanted[t][1] != stored[t][1])
            scored = sorted(t for t in wanted.keys() & stored.keys() if wanted[t][0] != stored[t][0])
            parts = [f"{label} {', '.join(tags[:3])}" for label, tags in
                     (("missing", missing), ("extra", extra), ("other score", scored),
                      ("another model's partition", moved)) if tags]  # fmt: skip
            yield "tag-items", key, f"{status}: " + "; ".join(parts)
    strays = db.execute(
        "SELECT DISTINCT t.key FROM tag_items t LEFT JOIN records r ON r.key = t.key WHERE r.key IS NULL"
    )
    for (key,) in strays.fetchall():
        if still("tag-items", key):
            yield "tag-items", key, "TAG items without a record"


def _vectors(snapshot: Snapshot, cutoff: float, still: Confirm) -> Iterator[tuple[str, str, str]]:
    db = snapshot.db
    if not db.execute("SELECT 1 FROM vectors LIMIT 1").fetchone() and not snapshot.done("vectors"):
        return  # the stack has no search index (or it was not walked)
    rows = db.execute(
        "SELECT r.key, r.content_id, v.content_id FROM records r LEFT JOIN vectors v ON v.key = r.key "
        "WHERE r.status = 'tagged' AND r.updated_at <= ?",
        (cutoff,),
    )
    for key, content, vector_content in rows.fetchall():
        if vector_content == content or not still("missing-vector", key):
            continue
        detail = f"vector of content {vector_content[:12]}, record of {content[:12]}" if vector_content else "no vector"
        yield "missing-vector", key, detail
    orphans = db.execute(
        "SELECT v.key, v.content_id, r.status FROM vectors v LEFT JOIN records r ON r.key = v.key "
        "WHERE r.key IS NULL OR (r.status != 'tagged' AND r.updated_at <= ?)",
        (cutoff,),
    )
    for key, content, status in orphans.fetchall():
        if still("orphan-vector", key):
            yield "orphan-vector", key, f"vector of content {content[:12]}, record {status or 'absent'}"


def _duplicates(snapshot: Snapshot, cutoff: float) -> Iterator[tuple[str, str, str]]:
    rows = snapshot.db.execute(
        "SELECT d.key, d.sk, d.other_key, d.content_id, d.other_content_id, r.status, r.content_id, "
        "o.status, o.content_id, r.updated_at, o.updated_at FROM duplicates d "
        "LEFT JOIN records r ON r.key = d.key LEFT JOIN records o ON o.key = d.other_key"
    )
    for key, sk, other, content, other_content, status, now, other_status, other_now, t1, t2 in rows:
        if not other or max(t1 or 0, t2 or 0) > cutoff:
            continue  # the other object is outside this verify's scope, or either changed lately
        live = status == "tagged" and now == content and other_status == "tagged" and other_now == other_content
        if not live:
            yield "stale-duplicate", f"{key}\0{sk}", f"{key} ~ {other}: one is gone or holds other bytes"


def _sidecars(snapshot: Snapshot, cutoff: float, still: Confirm) -> Iterator[tuple[str, str, str]]:
    """With WriteBack=Sidecar: a sidecar for each tagged record of the bytes the bucket lists
    (where its key fits S3's limit), and none for a photo that is gone without a live record.
    A listed photo whose record is failed, a tombstone or absent is left to its own finding (its
    recheck's write-back writes or removes the sidecar): deleting its sidecar here could race the
    tagger's commit."""
    db, prefix = snapshot.db, snapshot.basis.get("sidecars", "")
    if not prefix:
        return
    missing = db.execute(
        "SELECT r.key FROM records r JOIN objects o ON o.key = r.key AND o.etag = r.etag "
        "LEFT JOIN sidecars s ON s.key = r.key WHERE r.status = 'tagged' AND r.updated_at <= ? AND s.key IS NULL",
        (cutoff,),
    )
    for (key,) in missing.fetchall():  # the sidecar is written right after its record: no re-read needed
        if len(sidecar_key(key, prefix).encode()) <= S3_MAX_KEY_BYTES:
            yield "missing-sidecar", key, f"tagged; no {sidecar_key(key, prefix)}"
    orphans = db.execute(
        "SELECT s.key, s.sidecar_key, r.status FROM sidecars s LEFT JOIN records r ON r.key = s.key "
        "LEFT JOIN objects o ON o.key = s.key WHERE o.key IS NULL AND s.last_modified <= ? "
        "AND (r.key IS NULL OR (r.status != 'tagged' AND r.updated_at <= ?))",
        (cutoff, cutoff),
    )
    for key, held_at, status in orphans.fetchall():
        if still("orphan-sidecar", key):
            yield "orphan-sidecar", key, f"{held_at}: the photo is gone" + (f", its record {status}" if status else "")


def _bucket(snapshot: Snapshot) -> str:
    return str(json.loads(snapshot.db.execute("SELECT basis FROM run").fetchone()[0])["bucket"])
