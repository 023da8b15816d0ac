"""Tags written back where photo tools read them (WriteBack): S3 object tags and XMP sidecars.

What is written is decided here, from the object's record; ``cliptag.ports.MetadataStore`` does
the S3 calls. Every write follows a record that was committed, and only when it changes
something: the object's tags and its sidecar are read first and compared. Written only while the
object still holds the bytes the record describes (its ETag), and checked again after: a photo
deleted or overwritten meanwhile never keeps a sidecar or tags that are not its own.

S3 object tags: at most 10 per object, the user's own never dropped or overwritten; ours are
``cliptag:1`` … ``cliptag:N``, best first, in the room the user's leave. S3 allows letters,
digits, spaces and ``+ - = . _ : / @`` in a value: other characters become spaces.
Sidecars: one XMP packet per photo at ``<SidecarPrefix><key>.xmp``, with ``dc:subject`` (the
tags), ``lr:hierarchicalSubject`` (``category|tag``; places as ``places|country|region|city``),
``dc:description`` (the caption, Captions=On) and the place's ``photoshop:City`` …
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from cliptag.errors import PermanentError
from cliptag.lexicon import fold
from cliptag.ports import MetadataStore
from cliptag.records import ObjectRecord

logger = logging.getLogger(__name__)
SETTLE_ROUNDS = 2
OBJECT_TAG_PREFIX = "cliptag:"
S3_MAX_TAGS = 10
S3_MAX_KEY_BYTES = 1024
SIDECAR_SUFFIX = ".xmp"
_NOT_IN_S3_TAGS = re.compile(r"[^\w +\-=.:/@]")
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


def is_sidecar(key: str, prefix: str) -> bool:
    """A key under the sidecar prefix: never a photo, whatever its name."""
    return bool(prefix) and key.startswith(prefix)


def sidecar_key(key: str, prefix: str) -> str:
    return f"{prefix}{key}{SIDECAR_SUFFIX}"


def object_tags(record: ObjectRecord, existing: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """The object's tag set with the record's tags in the room the user's own leave, and a note
    when not all of them fit."""
    own = {k: v for k, v in existing.items() if not k.startswith(OBJECT_TAG_PREFIX)}
    values = list(dict.fromkeys(v for t in record.tags if (v := _s3_value(t.tag))))
    room = max(0, S3_MAX_TAGS - len(own))
    ours = {f"{OBJECT_TAG_PREFIX}{i}": value for i, value in enumerate(values[:room], start=1)}
    note = None
    if len(values) > room:
        note = (
            f"object tags: {room} of {len(values)} written; the object has {len(own)} tags of its own"
            f" and S3 allows {S3_MAX_TAGS}"
        )
    return own | ours, note


def _s3_value(tag: str) -> str:
    return re.sub(r"\s+", " ", _NOT_IN_S3_TAGS.sub(" ", tag)).strip()[:256]


def xmp(record: ObjectRecord, categories: Mapping[str, str], caption: str | None = None) -> bytes:
    """The record as an XMP sidecar packet (UTF-8; the same record always gives the same bytes)."""
    root = ET.Element(f"{{{NS['x']}}}xmpmeta", {f"{{{NS['x']}}}xmptk": "cliptag"})
    rdf = ET.SubElement(root, f"{{{NS['rdf']}}}RDF")
    about = ET.SubElement(rdf, f"{{{NS['rdf']}}}Description", {f"{{{NS['rdf']}}}about": ""})
    names = list(dict.fromkeys(t.tag for t in record.tags))
    place = record.place
    _bag(about, "dc", "subject", names)
    _bag(about, "lr", "hierarchicalSubject", _hierarchy(record, categories))
    if caption:
        alt = ET.SubElement(ET.SubElement(about, f"{{{NS['dc']}}}description"), f"{{{NS['rdf']}}}Alt")
        li = ET.SubElement(alt, f"{{{NS['rdf']}}}li", {"xml:lang": "x-default"})
        li.text = caption
    if place is not None:
        for ns, name, value in (
            ("photoshop", "City", place.city),
            ("photoshop", "State", place.region),
            ("photoshop", "Country", place.country),
            ("Iptc4xmpCore", "CountryCode", place.country_code),
        ):
            if value:
                ET.SubElement(about, f"{{{NS[ns]}}}{name}").text = value
    ET.indent(root, space=" ")  # for people who open the file
    body = ET.tostring(root, encoding="unicode")
    return f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n{body}\n<?xpacket end="w"?>\n'.encode()


def _hierarchy(record: ObjectRecord, categories: Mapping[str, str]) -> list[str]:
    """``category|tag`` per tag (a tag without a category as it is); a place tag as its path
    ``places|country|region|city``, as photo tools file places."""
    paths: dict[str, str] = {}
    if record.place is not None:
        levels = [n for n in (record.place.country, record.place.region, record.place.city) if n]
        paths = {fold(name): "|".join(["places", *levels[: i + 1]]) for i, name in enumerate(levels)}
    found = []
    for t in record.tags:
        if t.source == "gps":  # named as cliptag.places names them: folded, maybe qualified " (…)"
            found.append(paths.get(t.tag.split(" (")[0], f"places|{t.tag}"))
        else:
            category = categories.get(t.tag, "")
            found.append(f"{category}|{t.tag}" if category else t.tag)
    return list(dict.fromkeys(found))


def _bag(parent: ET.Element, ns: str, name: str, items: list[str]) -> None:
    if not items:
        return
    bag = ET.SubElement(ET.SubElement(parent, f"{{{NS[ns]}}}{name}"), f"{{{NS['rdf']}}}Bag")
    for item in items:
        ET.SubElement(bag, f"{{{NS['rdf']}}}li").text = item


@dataclass(frozen=True)
class WritePlan:
    """What one committed record asks of S3: nothing is written where nothing changes."""

    record: ObjectRecord
    tags: dict[str, str] | None = None  # the object's new tag set; None: unchanged or not written
    sidecar: bytes | None = None  # the sidecar's new bytes; None: unchanged or not written
    remove_sidecar: bool = False


@dataclass
class WriteBack:
    store: MetadataStore
    object_tags: bool
    sidecars: bool
    sidecar_prefix: str
    categories: Mapping[str, str]
    # The object's record as stored now (the ObjectStore's get), to settle races between commits.
    current: Callable[[str, str], ObjectRecord | None] | None = None

    def plan(self, record: ObjectRecord) -> WritePlan:
        """Read what the object carries now and decide what to write; the record comes back
        with its ``write_back`` note (what could not be written), to be committed with it."""
        if record.status != "tagged":  # no tags: a sidecar of earlier bytes must not stay
            return WritePlan(replace(record, write_back=None), remove_sidecar=self.sidecars)
        notes: list[str] = []
        tags = sidecar = None
        if self.object_tags:
            try:
                existing = self.store.object_tags(record.bucket, record.key, "")
            except PermanentError as exc:  # refused: said in the record, the tags kept
                notes.append(f"object tags: {exc}")
            else:
                wanted, note = object_tags(record, existing)
                tags = None if wanted == existing else wanted
                notes += [note] if note else []
        if self.sidecars:
            key = sidecar_key(record.key, self.sidecar_prefix)
            if len(key.encode()) > S3_MAX_KEY_BYTES:
                notes.append(f"no sidecar: its key would be over S3's {S3_MAX_KEY_BYTES} bytes")
            else:
                data = xmp(record, self.categories, record.caption)
                try:
                    sidecar = None if self.store.read(record.bucket, key) == data else data
                except PermanentError as exc:
                    notes.append(f"sidecar: {exc}")
        return WritePlan(replace(record, write_back="; ".join(notes) or None), tags, sidecar)

    def apply(self, plan: WritePlan) -> None:
        """Write while the object still holds the record's bytes, then make sure what was written
        is still right (module docstring). A refusal (no permission, a tag S3 rejects) is logged:
        the record is committed, and retrying cannot change the answer."""
        try:
            if self._apply(plan) and self.current is not None:
                self._settle(plan.record)
        except PermanentError as exc:
            logger.warning("write-back refused for s3://%s/%s: %s", plan.record.bucket, plan.record.key, exc)

    def _apply(self, plan: WritePlan) -> bool:
        """True when something was written."""
        record = plan.record
        if plan.remove_sidecar:  # only while the failed bytes are the object's (or it is gone)
            head = self.store.head(record.bucket, record.key)
            if head is None or head[0] == record.etag:
                self.store.delete(record.bucket, sidecar_key(record.key, self.sidecar_prefix))
            return False
        if plan.tags is None and plan.sidecar is None:
            return False
        head = self.store.head(record.bucket, record.key)
        if head is None or head[0] != record.etag:
            return False  # deleted or overwritten since: its own event writes what it needs
        version = head[1]  # a versioned bucket: the tags go to exactly the version the record describes
        if plan.tags is not None:
            existing = self.store.object_tags(record.bucket, record.key, version)  # the owner's, as they are now
            wanted, _ = object_tags(record, existing)
            if wanted != existing:
                self.store.put_object_tags(record.bucket, record.key, wanted, version)
        if plan.sidecar is not None:
            key = sidecar_key(record.key, self.sidecar_prefix)
            self.store.write(record.bucket, key, plan.sidecar)
            after = self.store.head(record.bucket, record.key)
            if (after is None or after[0] != record.etag) and self.store.read(record.bucket, key) == plan.sidecar:
                # Deleted or overwritten while we wrote: a sidecar of bytes that are gone must not stay.
                self.store.delete(record.bucket, key)
        return True

    def _settle(self, written: ObjectRecord) -> None:
        """Another commit of the object may have landed between ours and our S3 writes (a caption's
        re-tag and a decision's): if the stored record now says otherwise, write that instead."""
        assert self.current is not None
        for _ in range(SETTLE_ROUNDS):
            now = self.current(written.bucket, written.key)
            if now is None or _written_fields(now) == _written_fields(written):
                return
            self._apply(self.plan(now))
            written = now

    def removed(self, bucket: str, key: str) -> None:
        """The photo is gone (its removal committed): so is its sidecar, unless new bytes were
        uploaded meanwhile (their own event writes theirs). S3 drops object tags with the object."""
        if not self.sidecars or is_sidecar(key, self.sidecar_prefix):
            return
        try:
            if self.store.head(bucket, key) is None:
                self.store.delete(bucket, sidecar_key(key, self.sidecar_prefix))
        except PermanentError as exc:
            logger.warning("sidecar of s3://%s/%s not removed: %s", bucket, key, exc)


def _written_fields(record: ObjectRecord) -> tuple[object, ...]:
    """What object tags and sidecars are made of."""
    return (record.status, record.etag, record.tags, record.caption, record.place)
