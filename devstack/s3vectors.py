"""Amazon S3 Vectors in the local AWS: QueryVectors, and the checks around it that moto lacks.

- ``POST /QueryVectors`` (moto 5.2.5 has none): exact nearest neighbours with numpy (one matrix
  per index, rebuilt after a write), cosine distance (1 - cosine similarity) or euclidean,
  topK 1..100, and the documented filter: $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or.
  On array metadata $eq/$in match when any element does (documented for $eq); $ne/$nin are
  their negations, so they also match a vector without the key (the docs are silent there).
  A filter on a ``nonFilterableMetadataKeys`` key is a 400 ValidationException, as documented.
- CreateIndex keeps ``metadataConfiguration`` and stamps ``creationTime`` (GetIndex had neither)
  and refuses an existing name with ConflictException (moto replaced the index and its vectors).
- PutVectors/GetVectors/DeleteVectors enforce the documented limits and PutVectors stores
  float32, as AWS does; ListVectors pages (maxResults, nextToken) and segments (moto returned
  every vector on one page, in every segment).

Limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-limitations.html
Filters: https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-metadata-filtering.html
"""

from __future__ import annotations

import base64
import json
import operator
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

MAX_TOP_K, MAX_PUT_VECTORS, MAX_DELETE_VECTORS, MAX_GET_VECTORS, MAX_KEY_LENGTH = 100, 500, 500, 100, 1024
MAX_METADATA_KEYS, MAX_FILTERABLE_METADATA_BYTES, MAX_METADATA_BYTES = 50, 2 * 1024, 40 * 1024
MAX_NON_FILTERABLE_KEYS, DEFAULT_LIST_PAGE, MAX_LIST_PAGE, MAX_SEGMENTS = 10, 500, 1000, 16

_CACHE = "_query_matrix"  # attribute on moto's Index; dropped on every write to the index
_lock = threading.RLock()  # the server is threaded; a matrix must not be built mid-write
_MISSING = object()
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}  # fmt: skip


def _invalid(message: str, code: str = "ValidationException") -> Exception:
    """An s3vectors error: moto finds the status code in the model of the exception's module."""
    from moto.s3vectors.exceptions import ValidationError

    error = ValidationError(message)
    error.code = code
    return error


def _constraint(path: str, rule: str) -> Exception:
    """AWS's wording for a request that breaks a modelled limit."""
    return _invalid(f"1 validation error detected. Value at '{path}' failed to satisfy constraint: Member must {rule}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_primitive(value: Any) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def _non_filterable(index: Any) -> set[str]:
    config = getattr(index, "metadata_configuration", None) or {}
    return set(config.get("nonFilterableMetadataKeys") or [])


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _as_float32(data: Any, index: Any, what: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    if not isinstance(data, list) or not all(_is_number(x) for x in data):
        raise _invalid(f"{what}: vector data must be a list of numbers in 'float32'")
    if len(data) != index.dimension:
        raise _invalid(f"{what}: vector must have length {index.dimension}, but has length {len(data)}")
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf, rejected below
        vector = np.asarray(data, dtype=np.float32)
    if not np.isfinite(vector).all():
        raise _invalid(f"{what}: vector data must contain only finite float32 values (no NaN or Infinity)")
    if index.distance_metric == "cosine" and not vector.any():
        raise _invalid(f"{what}: zero vectors are not allowed with the cosine distance metric")
    return vector


def _check_vectors(index: Any, vectors: list[dict[str, Any]]) -> None:
    """PutVectors' documented checks; the data is replaced by its float32 value, as AWS stores it."""
    hidden = _non_filterable(index)
    for i, vector in enumerate(vectors):
        key = vector.get("key")
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise _constraint(f"/vectors/{i}/key", f"have length between 1 and {MAX_KEY_LENGTH}, inclusive")
        what = f"Invalid record for key '{key}'"
        data = _as_float32((vector.get("data") or {}).get("float32"), index, what)
        vector["data"] = {"float32": data.tolist()}
        metadata = vector.get("metadata")
        if metadata is None:
            continue
        if not isinstance(metadata, dict):
            raise _invalid(f"{what}: metadata must be a JSON object")
        filterable = {k: v for k, v in metadata.items() if k not in hidden}
        for size, limit, what_of in (
            (len(metadata), MAX_METADATA_KEYS, "metadata keys"),
            (_json_size(metadata), MAX_METADATA_BYTES, "bytes of metadata"),
            (_json_size(filterable), MAX_FILTERABLE_METADATA_BYTES, "bytes of filterable metadata"),
        ):
            if size > limit:
                raise _invalid(f"{what}: {size} {what_of}, more than the {limit} allowed")


# What each documented operator takes (S3 user guide, "Metadata filtering").
_OPERANDS: dict[str, Callable[[Any], bool]] = {
    "$eq": _is_primitive, "$ne": _is_primitive, "$exists": lambda value: isinstance(value, bool),
    **dict.fromkeys(("$in", "$nin"), lambda v: isinstance(v, list) and bool(v) and all(map(_is_primitive, v))),
    **dict.fromkeys(_ORDER, _is_number),
}  # fmt: skip


def _check_filter(node: Any, hidden: set[str]) -> None:
    """Rejects a malformed filter, or one on a non-filterable key, before any vector is read."""
    if not isinstance(node, dict) or not node:
        raise _invalid("Invalid filter: a filter must be a non-empty JSON object")
    for key, condition in node.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                raise _invalid(f"Invalid filter: {key} takes a non-empty array of filters")
            for sub in condition:
                _check_filter(sub, hidden)
        elif key.startswith("$"):
            raise _invalid(f"Invalid filter: unsupported operator {key}")
        elif key in hidden:
            raise _invalid(f"Invalid filter: metadata key '{key}' is non-filterable and cannot be used in a filter")
        else:
            operations = condition if isinstance(condition, dict) else {"$eq": condition}
            if not operations:
                raise _invalid(f"Invalid filter: empty condition for key '{key}'")
            for op, operand in operations.items():
                if op not in _OPERANDS:
                    raise _invalid(f"Invalid filter: unsupported operator {op} for key '{key}'")
                if not _OPERANDS[op](operand):
                    raise _invalid(f"Invalid filter: invalid operand for {op} on key '{key}': {json.dumps(operand)}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python, not in a filter
        return a is b
    return bool(a == b)


def _test(op: str, value: Any, operand: Any) -> bool:
    if op == "$exists":
        return (value is not _MISSING) is operand
    if op in ("$ne", "$nin"):
        return not _test("$eq" if op == "$ne" else "$in", value, operand)
    items = value if isinstance(value, list) else [value]  # array metadata: any element matches
    if op == "$eq":
        return any(_same(item, operand) for item in items)
    if op == "$in":
        return any(_same(item, choice) for item in items for choice in operand)
    return any(_is_number(item) and _ORDER[op](item, operand) for item in items)


def _matches(node: dict[str, Any], metadata: dict[str, Any]) -> bool:
    for key, condition in node.items():
        if key == "$and":
            ok = all(_matches(sub, metadata) for sub in condition)
        elif key == "$or":
            ok = any(_matches(sub, metadata) for sub in condition)
        else:
            operations = condition if isinstance(condition, dict) else {"$eq": condition}
            ok = all(_test(op, metadata.get(key, _MISSING), v) for op, v in operations.items())
        if not ok:
            return False
    return True


def _distances(index: Any, query: np.ndarray[Any, Any]) -> tuple[list[Any], np.ndarray[Any, Any]]:
    """The index's vectors and their distances to the query; the matrix is built once per write."""
    with _lock:
        if (cached := index.__dict__.get(_CACHE)) is None:
            vectors = list(index.vectors.values())
            data = np.array([v.data["float32"] for v in vectors], dtype=np.float64).reshape(-1, index.dimension)
            cached = index.__dict__[_CACHE] = (vectors, data, np.linalg.norm(data, axis=1))
    vectors, data, norms = cached
    q = query.astype(np.float64)
    if index.distance_metric == "cosine":
        return vectors, 1.0 - (data @ q) / (norms * np.linalg.norm(q))
    return vectors, np.linalg.norm(data - q, axis=1)


def query_vectors(self: Any) -> Any:
    """S3VectorsResponse.query_vectors: the QueryVectors action."""
    from moto.core.responses import ActionResult

    bucket, name, arn = (self._get_param(p) for p in ("vectorBucketName", "indexName", "indexArn"))
    self._validate_index_params(arn, name, bucket)
    top_k = self._get_param("topK")
    if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise _constraint("/topK", f"be between 1 and {MAX_TOP_K}, inclusive")
    index = self.s3vectors_backend.get_index(bucket, name, arn)
    query = _as_float32((self._get_param("queryVector") or {}).get("float32"), index, "Invalid query vector")
    where = self._get_param("filter")
    if where is not None:
        _check_filter(where, _non_filterable(index))
    distance, metadata = self._get_bool_param("returnDistance", False), self._get_bool_param("returnMetadata", False)
    vectors, distances = _distances(index, query)
    found: list[dict[str, Any]] = []
    for i in np.argsort(distances, kind="stable"):  # nearest first; filter until topK are found
        if len(found) == top_k:
            break
        vector = vectors[i]
        if where is None or _matches(where, vector.metadata or {}):
            found.append({"key": vector.key, "distance": float(distances[i]) if distance else None,
                          "metadata": vector.metadata if metadata else None})  # fmt: skip
    return ActionResult({"vectors": found, "distanceMetric": index.distance_metric})


def list_vectors(self: Any) -> Any:
    """S3VectorsResponse.list_vectors with maxResults, nextToken and segments (moto returned all,
    in every segment): keys in order, a segment being the keys whose CRC-32 falls in it."""
    from moto.core.responses import ActionResult

    bucket, name, arn = (self._get_param(p) for p in ("vectorBucketName", "indexName", "indexArn"))
    self._validate_index_params(arn, name, bucket)
    page = self._get_int_param("maxResults", DEFAULT_LIST_PAGE)
    if not 1 <= page <= MAX_LIST_PAGE:
        raise _constraint("/maxResults", f"be between 1 and {MAX_LIST_PAGE}, inclusive")
    count, segment = self._get_int_param("segmentCount"), self._get_int_param("segmentIndex")
    if (count is None) != (segment is None) or (count is not None and not 0 <= segment < count <= MAX_SEGMENTS):
        raise _invalid("segmentCount (1 to 16) and segmentIndex (0 to segmentCount - 1) must be given together")
    index = self.s3vectors_backend.get_index(bucket, name, arn)
    with _lock:
        keys = sorted(k for k in index.vectors if count is None or zlib.crc32(k.encode()) % count == segment)
    if token := self._get_param("nextToken"):
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError
            raise _invalid("The provided nextToken is not valid") from None
        keys = [k for k in keys if k > after]
    data, metadata = self._get_bool_param("returnData", False), self._get_bool_param("returnMetadata", False)
    listed = [index.vectors[k] for k in keys[:page] if k in index.vectors]
    result: dict[str, Any] = {"vectors": [
        {"key": v.key, "data": v.data if data else None, "metadata": v.metadata if metadata else None} for v in listed
    ]}  # fmt: skip
    if len(keys) > page:
        result["nextToken"] = base64.urlsafe_b64encode(keys[page - 1].encode()).decode()
    return ActionResult(result)


def _install_response(response: Any) -> None:
    original_create_index = response.create_index

    def create_index(self: Any) -> Any:
        config = self._get_param("metadataConfiguration")
        hidden = list((config or {}).get("nonFilterableMetadataKeys") or [])
        if len(hidden) > MAX_NON_FILTERABLE_KEYS or any(not 1 <= len(key) <= 63 for key in hidden):
            path = "/metadataConfiguration/nonFilterableMetadataKeys"
            raise _constraint(path, f"hold at most {MAX_NON_FILTERABLE_KEYS} keys of 1 to 63 characters")
        result = original_create_index(self)
        backend, p = self.s3vectors_backend, self._get_param
        bucket = backend.get_vector_bucket(p("vectorBucketName"), p("vectorBucketArn"))
        index = backend.get_index(bucket.vector_bucket_name, p("indexName"), None)
        index.creation_time = datetime.now(UTC)  # required in GetIndex's answer; moto had none
        if config is not None:
            index.metadata_configuration = {"nonFilterableMetadataKeys": hidden}
        return result

    for function in (create_index, query_vectors, list_vectors):
        setattr(response, function.__name__, function)


def _limit(keys: Any, path: str, most: int) -> None:
    if not isinstance(keys, list) or not 1 <= len(keys) <= most:
        raise _constraint(path, f"have length between 1 and {most}, inclusive")
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise _constraint(f"{path}/{i}", f"have length between 1 and {MAX_KEY_LENGTH}, inclusive")


def _install_backend(backend: Any) -> None:
    original_create, original_put = backend.create_index, backend.put_vectors
    original_get, original_delete = backend.get_vectors, backend.delete_vectors

    def create_index(self: Any, vector_bucket_name: str, vector_bucket_arn: str, index_name: str, *args: Any,
                     **kwargs: Any) -> None:  # fmt: skip
        bucket = self.get_vector_bucket(vector_bucket_name=vector_bucket_name, vector_bucket_arn=vector_bucket_arn)
        if any(index.index_name == index_name for index in bucket.indexes.values()):
            raise _invalid("A vector index with the specified name already exists", "ConflictException")
        original_create(self, vector_bucket_name, vector_bucket_arn, index_name, *args, **kwargs)

    def put_vectors(self: Any, vector_bucket_name: str, index_name: str, index_arn: str, vectors: Any) -> None:
        if not isinstance(vectors, list) or not 1 <= len(vectors) <= MAX_PUT_VECTORS:
            raise _constraint("/vectors", f"have length between 1 and {MAX_PUT_VECTORS}, inclusive")
        with _lock:
            index = self.get_index(vector_bucket_name, index_name=index_name, index_arn=index_arn)
            _check_vectors(index, vectors)
            original_put(self, vector_bucket_name, index_name, index_arn, vectors)
            index.__dict__.pop(_CACHE, None)

    def get_vectors(self: Any, vector_bucket_name: str, index_name: str, index_arn: str, keys: Any) -> Any:
        _limit(keys, "/keys", MAX_GET_VECTORS)
        return original_get(self, vector_bucket_name, index_name, index_arn, keys)

    def delete_vectors(self: Any, vector_bucket_name: str, index_name: str, index_arn: str, keys: Any) -> None:
        _limit(keys, "/keys", MAX_DELETE_VECTORS)
        with _lock:
            index = self.get_index(vector_bucket_name, index_name=index_name, index_arn=index_arn)
            original_delete(self, vector_bucket_name, index_name, index_arn, keys)
            index.__dict__.pop(_CACHE, None)

    for function in (create_index, put_vectors, get_vectors, delete_vectors):
        setattr(backend, function.__name__, function)


def install() -> None:
    """Adds QueryVectors to moto's S3 Vectors (its route, for server and in-process use) and the
    fixes above. Idempotent; call before the server answers its first S3 Vectors request."""
    from moto.s3vectors import urls
    from moto.s3vectors.models import S3VectorsBackend
    from moto.s3vectors.responses import S3VectorsResponse

    urls.url_paths.setdefault("{0}/QueryVectors$", S3VectorsResponse.dispatch)
    if getattr(S3VectorsResponse, "answers_queries", False):
        return
    _install_response(S3VectorsResponse)
    _install_backend(S3VectorsBackend)
    setattr(S3VectorsResponse, "answers_queries", True)  # noqa: B010
