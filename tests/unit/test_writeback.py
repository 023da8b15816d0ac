"""What is written back to S3: object tags within S3's documented limits, the user's own kept;
XMP sidecars that a reader no one here wrote (exiftool) reads back; writes only when something
changes, and never for a photo deleted or overwritten meanwhile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from cliptag.errors import PermanentError
from cliptag.records import ObjectRecord, Place, TagScore
from cliptag.writeback import WriteBack, object_tags, sidecar_key, xmp

PARIS = Place(48.85837, 2.294481, "Paris", "Île-de-France", "France", "FR", 4.0)
RECORD = ObjectRecord(
    bucket="photos",
    key="trips/eiffel.jpg",
    status="tagged",
    etag="abc",
    tags=(
        TagScore("tower", 0.31, "person"),
        TagScore("salt & pepper", 0.3, "examples"),
        TagScore("sky", 0.29),
        TagScore("city", 0.28),
        TagScore("paris", 1.0, "gps"),
        TagScore("île-de-france", 1.0, "gps"),
        TagScore("france", 1.0, "gps"),
    ),
    place=PARIS,
    caption="a tower & the sky over paris",
)
CATEGORIES = {"tower": "architecture", "sky": "nature", "city": "places"}
# S3 User Guide, "Categorizing your storage using tags": "You can associate up to 10 tags with an
# object"; values "can be up to 256 Unicode characters"; "The allowed characters across services
# are: letters, numbers, and spaces representable in UTF-8, and the following characters: + - = . _ : / @."
S3_ALLOWED = re.compile(r"^[\w +\-=.:/@]*$")


def test_our_tags_fill_the_room_the_users_own_leave_and_say_what_did_not_fit() -> None:
    own = {f"team:{i}": f"value {i}" for i in range(7)}
    tags, note = object_tags(RECORD, {**own, "cliptag:1": "old", "cliptag:9": "older"})
    assert len(tags) == 10 and {k: tags[k] for k in own} == own  # never dropped nor overwritten
    assert [tags[f"cliptag:{i}"] for i in (1, 2, 3)] == ["tower", "salt pepper", "sky"]  # best first
    assert "cliptag:9" not in tags  # our earlier ones are replaced, not kept
    assert note is not None and "3 of 7" in note and "7 tags of its own" in note
    assert all(S3_ALLOWED.match(v) and len(v) <= 256 for v in tags.values())


def test_with_no_tags_of_its_own_every_tag_fits() -> None:
    tags, note = object_tags(RECORD, {})
    assert note is None and len(tags) == 7 and tags["cliptag:5"] == "paris"


def test_exiftool_reads_the_sidecar_back(tmp_path: Path) -> None:
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool not installed (Debian: libimage-exiftool-perl)")
    (path := tmp_path / "eiffel.jpg.xmp").write_bytes(xmp(RECORD, CATEGORIES, RECORD.caption))
    fields = ["-XMP-dc:Subject", "-XMP-lr:HierarchicalSubject", "-XMP-photoshop:City", "-XMP-photoshop:State"]
    fields += ["-XMP-photoshop:Country", "-XMP-iptcCore:CountryCode", "-XMP-dc:Description"]
    out = subprocess.run([exiftool, "-j", "-a", *fields, str(path)], capture_output=True, check=True)
    read = json.loads(out.stdout)[0]
    assert read["Subject"] == [t.tag for t in RECORD.tags]  # & escaped and read back as it was
    assert read["HierarchicalSubject"] == [
        "architecture|tower",
        "salt & pepper",  # a taught tag without a category
        "nature|sky",
        "places|city",
        "places|France|Île-de-France|Paris",
        "places|France|Île-de-France",
        "places|France",
    ]
    assert read["Description"] == RECORD.caption  # Captions=On: the caption
    assert (read["City"], read["State"], read["Country"], read["CountryCode"]) == (
        "Paris",
        "Île-de-France",
        "France",
        "FR",
    )


def test_the_same_record_gives_the_same_sidecar_bytes() -> None:
    assert xmp(RECORD, CATEGORIES) == xmp(RECORD, dict(CATEGORIES))


@dataclass
class Bucket:
    """The MetadataStore port in memory: objects' ETags and tags, sidecars, and every write."""

    etags: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    deny_tags: bool = False
    delete_on_write: str = ""  # a concurrent delete of this photo while its sidecar is written

    def head(self, bucket: str, key: str) -> tuple[str, str] | None:
        return (self.etags[key], "") if key in self.etags else None

    def object_tags(self, bucket: str, key: str, version_id: str) -> dict[str, str]:
        if self.deny_tags:
            raise PermanentError("S3 GetObjectTagging refused: AccessDenied")
        return dict(self.tags.get(key, {}))

    def put_object_tags(self, bucket: str, key: str, tags: dict[str, str], version_id: str) -> None:
        self.writes.append(f"tags {key}")
        self.tags[key] = dict(tags)

    def read(self, bucket: str, key: str) -> bytes | None:
        return self.files.get(key)

    def write(self, bucket: str, key: str, data: bytes) -> None:
        self.writes.append(f"put {key}")
        self.files[key] = data
        if self.delete_on_write:
            self.etags.pop(self.delete_on_write, None)

    def delete(self, bucket: str, key: str) -> None:
        self.writes.append(f"delete {key}")
        self.files.pop(key, None)


def sync(bucket: Bucket, record: ObjectRecord = RECORD, current: ObjectRecord | None = None) -> ObjectRecord:
    stored = current or record
    writer = WriteBack(bucket, True, True, "xmp/", CATEGORIES, current=lambda b, k: stored)
    plan = writer.plan(record)
    writer.apply(plan)
    return plan.record


def test_a_second_sync_of_the_same_tags_writes_nothing() -> None:
    bucket = Bucket(etags={RECORD.key: "abc"})
    sync(bucket)
    assert bucket.writes == [f"tags {RECORD.key}", f"put {sidecar_key(RECORD.key, 'xmp/')}"]
    sync(bucket)
    assert len(bucket.writes) == 2


def test_an_overwritten_or_deleted_photo_gets_nothing_of_the_older_record() -> None:
    overwritten = Bucket(etags={RECORD.key: "newer"})
    sync(overwritten)
    assert overwritten.writes == [] and overwritten.files == {}
    deleted = Bucket()
    sync(deleted)
    assert deleted.writes == []


def test_a_photo_deleted_while_its_sidecar_is_written_keeps_no_sidecar() -> None:
    bucket = Bucket(etags={RECORD.key: "abc"}, delete_on_write=RECORD.key)
    sync(bucket)
    assert bucket.files == {} and bucket.writes[-1] == f"delete {sidecar_key(RECORD.key, 'xmp/')}"


def test_a_refusal_is_noted_in_the_record_and_the_sidecar_still_written() -> None:
    bucket = Bucket(etags={RECORD.key: "abc"}, deny_tags=True)
    written = sync(bucket)
    assert written.write_back is not None and "AccessDenied" in written.write_back
    assert sidecar_key(RECORD.key, "xmp/") in bucket.files


def test_a_failed_record_removes_the_sidecar_of_earlier_bytes_but_never_of_newer_ones() -> None:
    failed = ObjectRecord(bucket="photos", key=RECORD.key, status="failed", etag="bad", error="not an image")
    bucket = Bucket(etags={RECORD.key: "bad"}, files={sidecar_key(RECORD.key, "xmp/"): b"<old/>"})
    sync(bucket, failed)
    assert bucket.files == {}
    newer = Bucket(etags={RECORD.key: "abc"}, files={sidecar_key(RECORD.key, "xmp/"): b"<newer/>"})
    sync(newer, failed)  # committed late, after newer bytes were tagged and written back
    assert newer.files == {sidecar_key(RECORD.key, "xmp/"): b"<newer/>"}


def test_the_owners_tags_put_between_reading_and_writing_are_kept() -> None:
    bucket = Bucket(etags={RECORD.key: "abc"}, tags={RECORD.key: {"team:a": "1"}})
    writer = WriteBack(bucket, True, False, "xmp/", CATEGORIES)
    plan = writer.plan(RECORD)
    bucket.tags[RECORD.key]["team:b"] = "2"  # the owner tags the photo meanwhile
    writer.apply(plan)
    assert {k: v for k, v in bucket.tags[RECORD.key].items() if k.startswith("team:")} == {"team:a": "1", "team:b": "2"}


def test_a_record_committed_after_ours_is_what_stays_written() -> None:
    bucket = Bucket(etags={RECORD.key: "abc"})
    later = replace(RECORD, tags=(TagScore("sky", 0.29),), caption="a sky")  # a re-tag that won the race
    sync(bucket, RECORD, current=later)
    assert [v for k, v in sorted(bucket.tags[RECORD.key].items())] == ["sky"]
    assert b"a sky" in bucket.files[sidecar_key(RECORD.key, "xmp/")]
