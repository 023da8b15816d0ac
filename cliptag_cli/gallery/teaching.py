"""Teaching a tag from the gallery: ``POST /teach`` fits the tag from the photos the person
selected (``cliptag_cli.teach``, with the credentials the gallery already holds: the table and the
tagging queue, as ``cliptag teach`` uses them) and, when asked to apply it, keeps it and has the
library re-tagged on a thread of its own, one re-tag at a time, until every record shows the
taught set as it is now (a tag taught while a re-tag runs gets another pass)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from cliptag_cli.gallery.upstream import Answer, error
from cliptag_cli.target import Target

MAX_KEYS = 200  # examples and negatives a request may name


def _keys(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(k, str) and 0 < len(k) <= 1024 for k in value):
        raise ValueError(f"{what} must be a list of object keys")
    if len(value) > MAX_KEYS:
        raise ValueError(f"at most {MAX_KEYS} {what}")
    return value


class GalleryTeacher:
    def __init__(self, target: Target, settle_s: float | None = None) -> None:
        from cliptag.adapters.dynamodb import Table

        from cliptag_cli.teach import SETTLE_S

        self.target = target
        self.settle_s = SETTLE_S if settle_s is None else settle_s
        self.table = Table(target.table, target.dynamodb)
        self._due = threading.Event()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._teaching = threading.Lock()
        self.retagging = False

    def handle(self, body: bytes) -> Answer:
        """``{"name", "examples": [keys], "negatives": [keys], "category", "apply": bool}``: the
        fitted tag's figures (200), kept and being applied when ``apply`` (201)."""
        from cliptag_cli.teach import Request

        try:
            doc = json.loads(body)
            if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
                raise ValueError("a JSON object with a name is expected")
            category = doc.get("category")
            if category is not None and not isinstance(category, str):
                raise ValueError("category must be text")
            request = Request(
                doc["name"], _keys(doc.get("examples"), "examples"), _keys(doc.get("negatives"), "negatives"), category
            )
        except ValueError as exc:  # JSONDecodeError is one
            return error(400, str(exc))
        with self._teaching:  # one teach at a time: two of one name would race for its head entry
            return self._teach(doc, request)

    def _teach(self, doc: dict[str, Any], request: Any) -> Answer:
        from cliptag.adapters.dynamodb import DynamoTaughtTags

        from cliptag_cli.retag import deployed
        from cliptag_cli.teach import Refused, lesson

        deployment = deployed(self.table)
        if deployment is None:
            return error(409, "no tagger has recorded what it runs yet: upload a photo first")
        try:
            fitted = lesson(self.target, self.table, deployment, request)
        except Refused as exc:
            return error(400, str(exc))
        applied = bool(doc.get("apply"))
        if applied:
            DynamoTaughtTags(self.table).put(fitted.tag)
            self.retag_soon()
        answer = {**fitted.as_json(), "applied": applied, "retagging": applied}
        return Answer(201 if applied else 200, json.dumps(answer).encode("utf-8"))

    def retag_soon(self) -> None:
        self._due.set()
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._retag_forever, name="teach-retag", daemon=True)
                self._worker.start()

    def _retag_forever(self) -> None:
        import time

        from cliptag_cli.feed import DEFAULT_MAX_BACKLOG
        from cliptag_cli.teach import retag_library

        args = argparse.Namespace(
            dry_run=False, restart=False, max_backlog=DEFAULT_MAX_BACKLOG, page_size=None, settle_seconds=self.settle_s
        )
        while True:
            self._due.wait()
            self._due.clear()
            self.retagging = True
            try:
                retag_library(self.target, self.table, args, changed_at=time.time())
            except Exception as exc:  # the network: said, and tried again at the next teach
                print(f"gallery: re-tag after teaching: {exc!r} (run `cliptag retag` to finish it)", file=sys.stderr)
            finally:
                self.retagging = self._due.is_set()
