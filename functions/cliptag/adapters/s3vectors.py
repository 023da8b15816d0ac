"""The search index: one vector per object in an Amazon S3 Vectors index (the VectorIndex port).

A vector's key is the object's ref (``cliptag.keys.vector_key``); its filterable metadata is
what queries narrow by (the object's tags, its categories, its folders: every key prefix ending
in "/", so "under this folder" is an equality filter), its non-filterable metadata what a
result needs back (the ref and the content id). The vector itself is the stored content
embedding (int8, decoded): putting it costs no inference. Writes are strongly consistent: a
vector put is found by the next query, which the near-duplicate check relies on.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import numpy as np
from botocore.config import Config
from numpy.typing import NDArray

from cliptag import keys
from cliptag.adapters.aws import errors_mapped
from cliptag.records import Neighbour, VectorEntry, VectorFilter

PUT_MAX, DELETE_MAX, GET_MAX = 500, 500, 100  # vectors per call (S3 Vectors' limits)
TOP_K_MAX = 100
# Filterable metadata is limited to 2 KB per vector: the folders of a very deep key stop here,
# and filterable() trims what still does not fit (with a margin for how AWS counts it).
MAX_FOLDERS = keys.VECTOR_FOLDERS_MAX
FILTERABLE_BYTES = 1900
NON_FILTERABLE = ("ref", "content_id")  # the template's MetadataConfiguration lists the same keys
MODEL_KEY = "model"  # filterable: the model's space (records.VectorEntry.space)
TRANSIENT_CODES = {
    "ThrottlingException",
    "TooManyRequestsException",
    "ServiceUnavailableException",
    "InternalServerException",
    "RequestTimeoutException",
}


def folders(key: str) -> list[str]:
    """Every prefix of ``key`` that ends in "/": "a/b/c.jpg" -> ["a/", "a/b/"]."""
    parts = key.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(min(len(parts), MAX_FOLDERS))]


def filterable(entry: VectorEntry) -> dict[str, Any]:
    """The entry's filterable metadata, within S3 Vectors' 2 KB: a deep, long key's folders go
    first (deepest first), then its lowest tags; what is dropped only narrows what filters find.
    The model's space is never dropped: it keeps two models' vectors apart in one index."""
    lists = {
        "tags": list(entry.tags),
        "categories": list(entry.categories),
        "folders": folders(keys.split_ref(entry.ref)[1]),
    }
    metadata: dict[str, Any] = {**lists, MODEL_KEY: entry.space} if entry.space else dict(lists)
    for name in ("folders", "tags", "categories"):
        while metadata[name] and _size(metadata) > FILTERABLE_BYTES:
            metadata[name].pop()
    return metadata


def _size(metadata: dict[str, Any]) -> int:
    return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def metadata_filter(where: VectorFilter | None) -> dict[str, Any] | None:
    """S3 Vectors' filter language: ``$eq`` on a list matches when the list holds the value. The
    first model's vectors carry no model key (``$exists: false``), another model's its space."""
    if where is None:
        return None
    clauses: list[dict[str, Any]] = [{"tags": {"$eq": tag}} for tag in dict.fromkeys(where.tags)]
    clauses += [
        {name: {"$eq": value}} for name, value in (("categories", where.category), ("folders", where.folder)) if value
    ]
    if where.not_tags:  # on a list, $nin keeps the vectors whose list holds none of the values
        clauses.append({"tags": {"$nin": list(where.not_tags)}})
    if where.space is not None:
        clauses.append({MODEL_KEY: {"$eq": where.space} if where.space else {"$exists": False}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def client() -> Any:
    return boto3.client(
        "s3vectors", config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)
    )


class S3VectorIndex:
    def __init__(self, bucket: str, index: str, s3vectors: Any = None) -> None:
        self.bucket, self.index = bucket, index
        self.client = s3vectors or client()

    def _call(self, operation: str, **kwargs: Any) -> Any:
        with errors_mapped("S3 Vectors", TRANSIENT_CODES, server_errors=True):
            return getattr(self.client, operation)(vectorBucketName=self.bucket, indexName=self.index, **kwargs)

    def put_many(self, entries: list[VectorEntry]) -> None:
        """Insert or replace each object's vector (a put on an existing key overwrites it)."""
        vectors = [
            {
                "key": keys.vector_key(e.ref),
                "data": {"float32": np.asarray(e.embedding, dtype=np.float32).tolist()},
                "metadata": {**filterable(e), "ref": e.ref, "content_id": e.content_id},
            }
            for e in entries
        ]
        for start in range(0, len(vectors), PUT_MAX):
            self._call("put_vectors", vectors=vectors[start : start + PUT_MAX])

    def delete_many(self, refs: list[str]) -> None:
        """Remove these objects' vectors (absent ones are not an error)."""
        vector_keys = sorted({keys.vector_key(ref) for ref in refs})
        for start in range(0, len(vector_keys), DELETE_MAX):
            self._call("delete_vectors", keys=vector_keys[start : start + DELETE_MAX])

    def get(self, ref: str) -> NDArray[np.float32] | None:
        found = self._call("get_vectors", keys=[keys.vector_key(ref)], returnData=True, returnMetadata=False)
        vectors = found.get("vectors", [])
        return np.asarray(vectors[0]["data"]["float32"], dtype=np.float32) if vectors else None

    def content_of(self, ref: str) -> str | None:
        """The content id an object's vector was put with ("" if unknown), or None: no vector."""
        found = self._call("get_vectors", keys=[keys.vector_key(ref)], returnData=False, returnMetadata=True)
        vectors = found.get("vectors", [])
        return str((vectors[0].get("metadata") or {}).get("content_id", "")) if vectors else None

    def listing(self, token: str | None = None, page_size: int = 500) -> tuple[list[tuple[str, str, str]], str | None]:
        """One page of the index's vectors: [(vector key, ref, content id)], the next page's token."""
        params: dict[str, Any] = {"maxResults": page_size, "returnMetadata": True}
        if token:
            params["nextToken"] = token
        found = self._call("list_vectors", **params)
        page = [
            (
                v["key"],
                str((v.get("metadata") or {}).get("ref", "")),
                str((v.get("metadata") or {}).get("content_id", "")),
            )
            for v in found.get("vectors", [])
        ]
        return page, found.get("nextToken")

    def nearest(self, vector: NDArray[np.float32], limit: int, where: VectorFilter | None = None) -> list[Neighbour]:
        """Up to ``limit`` objects nearest ``vector``, nearest first (cosine similarity)."""
        query: dict[str, Any] = {
            "topK": max(1, min(limit, TOP_K_MAX)),
            "queryVector": {"float32": np.asarray(vector, dtype=np.float32).tolist()},
            "returnMetadata": True,
            "returnDistance": True,
        }
        condition = metadata_filter(where)
        if condition is not None:
            query["filter"] = condition
        found = self._call("query_vectors", **query)
        return [
            Neighbour(
                ref=v["metadata"].get("ref", v["key"]),
                content_id=v["metadata"].get("content_id", ""),
                # Cosine distance is 1 - cosine similarity.
                similarity=keys.round_score(1.0 - float(v["distance"])),
                tags=tuple(v["metadata"].get("tags") or ()),
            )
            for v in found.get("vectors", [])
        ]
