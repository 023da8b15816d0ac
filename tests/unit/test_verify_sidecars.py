"""verify's sidecar findings (WriteBack=Sidecar) on a snapshot written here: which records lack a
sidecar and which sidecars are orphans, and which are left to another finding or not judged."""

from __future__ import annotations

import time
from pathlib import Path

from cliptag_cli.verify.drift import find, findings
from cliptag_cli.verify.snapshot import Snapshot

PREFIX = "cliptag-xmp/"
LONG = "deep/" * 203 + "x.jpg"  # 1,020 bytes: its sidecar's key would pass S3's 1,024


def snapshot(tmp_path: Path, sidecars: str = PREFIX) -> Snapshot:
    snap = Snapshot(tmp_path / "walk.sqlite", {"bucket": "photos", "sidecars": sidecars})
    old = time.time() - 3600
    records = {  # key -> (status, ETag of the record)
        "a.jpg": ("tagged", "e1"),
        "b.jpg": ("tagged", "e1"),
        "c.jpg": ("tagged", "e1"),
        "d.jpg": ("failed", "e1"),
        "e.jpg": ("failed", "e1"),
        "i.jpg": ("tagged", "e1"),
        LONG: ("tagged", "e1"),
    }
    listed = {"a.jpg": "e1", "b.jpg": "e2", "c.jpg": "e1", "e.jpg": "e1", "g.jpg": "e1", LONG: "e1"}
    with_sidecar = {"c.jpg": old, "d.jpg": old, "e.jpg": old, "f.jpg": old, "g.jpg": old, "i.jpg": old}
    with_sidecar["h.jpg"] = time.time() + 60  # written after the walks began: not judged
    db = snap.db
    db.executemany(
        "INSERT INTO records VALUES (?, ?, ?, 'c', '{}', 0, ?, 'm')",
        [(k, status, etag, int(old)) for k, (status, etag) in records.items()],
    )
    db.executemany("INSERT INTO objects VALUES (?, ?, 1, ?)", [(k, etag, old) for k, etag in listed.items()])
    db.executemany(
        "INSERT INTO sidecars VALUES (?, ?, 'x', ?)", [(k, f"{PREFIX}{k}.xmp", t) for k, t in with_sidecar.items()]
    )
    db.commit()
    return snap


def found(snap: Snapshot, kind: str) -> dict[str, str]:
    return {f.key: f.detail for f in findings(snap, kind)}


def test_a_tagged_record_of_the_listed_bytes_without_its_sidecar_is_missing_one(tmp_path: Path) -> None:
    snap = snapshot(tmp_path)
    find(snap, settle_s=0)
    # b.jpg holds other bytes (changed-object's finding), i.jpg is gone (gone-object's), the long
    # key's sidecar could never be written (S3's 1,024 bytes): none of them is missing a sidecar.
    assert found(snap, "missing-sidecar") == {"a.jpg": f"tagged; no {PREFIX}a.jpg.xmp"}


def test_only_a_sidecar_whose_photo_is_gone_without_a_live_record_is_an_orphan(tmp_path: Path) -> None:
    snap = snapshot(tmp_path)
    pending = find(snap, settle_s=0)
    # e.jpg and g.jpg are listed (their rechecks' write-back decides), i.jpg's record is tagged
    # (gone-object's recheck removes it), h.jpg's sidecar is newer than the walk: pending.
    assert found(snap, "orphan-sidecar") == {
        "d.jpg": f"{PREFIX}d.jpg.xmp: the photo is gone, its record failed",
        "f.jpg": f"{PREFIX}f.jpg.xmp: the photo is gone",
    }
    assert pending == 1


def test_a_reported_orphan_is_read_again_first(tmp_path: Path) -> None:
    snap = snapshot(tmp_path)
    find(snap, settle_s=0, confirm=lambda kind, key: key != "d.jpg")  # d.jpg was tagged meanwhile
    assert set(found(snap, "orphan-sidecar")) == {"f.jpg"}


def test_without_sidecars_written_none_is_judged(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, sidecars="")
    find(snap, settle_s=0)
    assert not found(snap, "missing-sidecar") and not found(snap, "orphan-sidecar")
