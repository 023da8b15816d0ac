"""S3 Vectors in the local AWS (devstack/s3vectors.py): QueryVectors and the checks around it,
asked of a real moto server over HTTP with boto3, as the product asks AWS."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack import moto_patches, s3vectors
from devstack.stack import free_port
from tests.conftest import ROOT


def _client(port: int) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        "s3vectors",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def s3v() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    moto_patches.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield _client(port)
    finally:
        server.stop()


@pytest.fixture
def make_index(s3v: Any) -> Callable[..., dict[str, str]]:
    """A new bucket and index per call (the server is shared by the module), as QueryVectors' kwargs."""

    def make(dimension: int = 3, metric: str = "cosine", non_filterable: list[str] | None = None) -> dict[str, str]:
        bucket, index = f"vb-{uuid.uuid4().hex[:12]}", "idx"
        s3v.create_vector_bucket(vectorBucketName=bucket)
        extra = {"metadataConfiguration": {"nonFilterableMetadataKeys": non_filterable}} if non_filterable else {}
        s3v.create_index(
            vectorBucketName=bucket,
            indexName=index,
            dataType="float32",
            dimension=dimension,
            distanceMetric=metric,
            **extra,
        )
        return {"vectorBucketName": bucket, "indexName": index}

    return make


def put(s3v: Any, where: dict[str, str], vectors: dict[str, tuple[list[float], dict[str, Any] | None]]) -> None:
    s3v.put_vectors(
        **where,
        vectors=[
            {"key": key, "data": {"float32": data}, **({"metadata": meta} if meta is not None else {})}
            for key, (data, meta) in vectors.items()
        ],
    )


def error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    return {**raised.value.response["Error"], "status": raised.value.response["ResponseMetadata"]["HTTPStatusCode"]}


def keys(response: dict[str, Any]) -> list[str]:
    return [v["key"] for v in response["vectors"]]


# --- QueryVectors: ranking and the response's switches ---------------------------------------


def test_query_ranks_nearest_first_with_exact_cosine_distances(s3v: Any, make_index: Any) -> None:
    where = make_index()
    put(
        s3v,
        where,
        {
            "same": ([2, 0, 0], None),
            "diagonal": ([1, 1, 0], None),
            "orthogonal": ([0, 3, 0], None),
            "opposite": ([-1, 0, 0], None),
        },
    )
    found = s3v.query_vectors(**where, topK=4, queryVector={"float32": [1, 0, 0]}, returnDistance=True)

    assert keys(found) == ["same", "diagonal", "orthogonal", "opposite"]
    assert [v["distance"] for v in found["vectors"]] == pytest.approx([0.0, 1 - 1 / math.sqrt(2), 1.0, 2.0], abs=1e-6)
    assert found["distanceMetric"] == "cosine"
    assert keys(s3v.query_vectors(**where, topK=2, queryVector={"float32": [1, 0, 0]})) == ["same", "diagonal"]


def test_euclidean_index_ranks_by_euclidean_distance(s3v: Any, make_index: Any) -> None:
    where = make_index(dimension=2, metric="euclidean")
    put(s3v, where, {"far": ([3, 4], None), "near": ([1, 0], None), "origin": ([0, 0], None)})
    found = s3v.query_vectors(**where, topK=3, queryVector={"float32": [0, 0]}, returnDistance=True)

    assert keys(found) == ["origin", "near", "far"]
    assert [v["distance"] for v in found["vectors"]] == pytest.approx([0.0, 1.0, 5.0])
    assert found["distanceMetric"] == "euclidean"


def test_distance_and_metadata_only_when_asked(s3v: Any, make_index: Any) -> None:
    where = make_index(non_filterable=["caption"])
    put(s3v, where, {"a": ([1, 0, 0], {"tags": ["cat"], "caption": "a cat on a mat"})})
    query = {**where, "topK": 1, "queryVector": {"float32": [1, 0, 0]}}

    assert s3v.query_vectors(**query)["vectors"] == [{"key": "a"}]
    assert s3v.query_vectors(**query, returnDistance=True)["vectors"] == [{"key": "a", "distance": 0.0}]
    # Non-filterable metadata cannot be filtered on but is returned with the rest.
    assert s3v.query_vectors(**query, returnMetadata=True)["vectors"] == [
        {"key": "a", "metadata": {"tags": ["cat"], "caption": "a cat on a mat"}}
    ]


def test_query_by_index_arn(s3v: Any, make_index: Any) -> None:
    where = make_index()
    put(s3v, where, {"a": ([1, 0, 0], None)})
    arn = s3v.get_index(**where)["index"]["indexArn"]
    assert keys(s3v.query_vectors(indexArn=arn, topK=1, queryVector={"float32": [1, 0, 0]})) == ["a"]


def test_top_k_above_100_is_rejected(s3v: Any, make_index: Any) -> None:
    where = make_index()
    put(s3v, where, {"a": ([1, 0, 0], None)})
    assert keys(s3v.query_vectors(**where, topK=100, queryVector={"float32": [1, 0, 0]})) == ["a"]
    failed = error(lambda: s3v.query_vectors(**where, topK=101, queryVector={"float32": [1, 0, 0]}))
    assert (failed["Code"], failed["status"]) == ("ValidationException", 400)
    assert "topK" in failed["Message"] and "100" in failed["Message"]


def test_query_vector_of_the_wrong_dimension_is_rejected(s3v: Any, make_index: Any) -> None:
    where = make_index()
    failed = error(lambda: s3v.query_vectors(**where, topK=1, queryVector={"float32": [1, 0]}))
    assert failed["Code"] == "ValidationException" and "length 3" in failed["Message"]


def test_unknown_index_or_bucket_is_not_found(s3v: Any, make_index: Any) -> None:
    where = make_index()
    for missing in ({**where, "indexName": "nope"}, {**where, "vectorBucketName": "no-such-bucket"}):
        failed = error(lambda m=missing: s3v.query_vectors(**m, topK=1, queryVector={"float32": [1, 0, 0]}))
        assert (failed["Code"], failed["status"]) == ("NotFoundException", 404)


# --- Metadata filters ------------------------------------------------------------------------

FILTERED = {
    "doc": ([1, 0, 0], {"genre": "documentary", "year": 2019, "tags": ["cat", "dog"], "public": True}),
    "drama": ([0.9, 0.1, 0], {"genre": "drama", "year": 2020, "tags": ["dog"], "public": False}),
    "comedy": ([0.8, 0.2, 0], {"genre": "comedy", "year": 2024, "tags": ["bird"], "caption": "x"}),
    "bare": ([0.7, 0.3, 0], {"year": 2021}),
}


@pytest.fixture(scope="module")
def filtered(s3v: Any) -> dict[str, str]:
    where = {"vectorBucketName": "vb-filters", "indexName": "idx"}
    s3v.create_vector_bucket(vectorBucketName=where["vectorBucketName"])
    s3v.create_index(
        **where,
        dataType="float32",
        dimension=3,
        distanceMetric="cosine",
        metadataConfiguration={"nonFilterableMetadataKeys": ["caption"]},
    )
    put(s3v, where, FILTERED)
    return where


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"genre": "drama"}, {"drama"}),  # no operator: $eq
        ({"genre": {"$eq": "drama"}}, {"drama"}),
        ({"genre": {"$ne": "drama"}}, {"doc", "comedy", "bare"}),  # a vector without the key is not equal
        ({"year": {"$gt": 2020}}, {"comedy", "bare"}),
        ({"year": {"$gte": 2020}}, {"drama", "comedy", "bare"}),
        ({"year": {"$lt": 2020}}, {"doc"}),
        ({"year": {"$lte": 2020}}, {"doc", "drama"}),
        ({"year": {"$gte": 2020, "$lte": 2021}}, {"drama", "bare"}),  # several operators on one key: AND
        ({"genre": {"$in": ["comedy", "drama"]}}, {"drama", "comedy"}),
        ({"genre": {"$nin": ["comedy", "drama"]}}, {"doc", "bare"}),
        ({"genre": {"$exists": True}}, {"doc", "drama", "comedy"}),
        ({"genre": {"$exists": False}}, {"bare"}),
        # Array metadata: $eq/$in match when any element does; $ne/$nin when none does.
        ({"tags": "cat"}, {"doc"}),
        ({"tags": {"$eq": "dog"}}, {"doc", "drama"}),
        ({"tags": {"$in": ["cat", "bird"]}}, {"doc", "comedy"}),
        ({"tags": {"$ne": "dog"}}, {"comedy", "bare"}),
        ({"tags": {"$nin": ["dog", "bird"]}}, {"bare"}),
        ({"public": True}, {"doc"}),
        ({"public": {"$ne": False}}, {"doc", "comedy", "bare"}),
        ({"year": True}, set()),  # a boolean never equals a number
        ({"genre": "drama", "year": 2020}, {"drama"}),  # several keys: AND
        ({"genre": "drama", "year": 2019}, set()),
        ({"$and": [{"genre": {"$exists": True}}, {"year": {"$gte": 2020}}]}, {"drama", "comedy"}),
        ({"$or": [{"genre": "documentary"}, {"year": 2021}]}, {"doc", "bare"}),
        ({"$or": [{"$and": [{"tags": "dog"}, {"public": False}]}, {"genre": "comedy"}]}, {"drama", "comedy"}),
    ],
)
def test_filter_operators(s3v: Any, filtered: dict[str, str], flt: dict[str, Any], expected: set[str]) -> None:
    found = s3v.query_vectors(**filtered, topK=10, queryVector={"float32": [1, 0, 0]}, filter=flt)
    assert set(keys(found)) == expected


def test_filter_picks_top_k_among_the_matches(s3v: Any, filtered: dict[str, str]) -> None:
    """The nearest vectors failing the filter do not use up topK (AWS filters, then ranks)."""
    found = s3v.query_vectors(**filtered, topK=1, queryVector={"float32": [1, 0, 0]}, filter={"year": 2021})
    assert keys(found) == ["bare"]
    found = s3v.query_vectors(**filtered, topK=2, queryVector={"float32": [1, 0, 0]}, filter={"tags": "dog"})
    assert keys(found) == ["doc", "drama"]


@pytest.mark.parametrize("flt", [{"caption": "x"}, {"$or": [{"genre": "drama"}, {"caption": {"$exists": True}}]}])
def test_filter_on_a_non_filterable_key_is_a_bad_request(s3v: Any, filtered: dict[str, str], flt: Any) -> None:
    failed = error(lambda: s3v.query_vectors(**filtered, topK=1, queryVector={"float32": [1, 0, 0]}, filter=flt))
    assert (failed["Code"], failed["status"]) == ("ValidationException", 400)
    assert "caption" in failed["Message"]


@pytest.mark.parametrize(
    "flt",
    [
        {"$not": {"genre": "drama"}},
        {"genre": {"$regex": "dr.*"}},
        {"year": {"$gt": "2020"}},
        {"genre": {"$in": []}},
        {"$and": []},
        {"tags": ["cat", "dog"]},  # equality takes a single value, not an array
        {},
    ],
)
def test_malformed_filter_is_rejected(s3v: Any, filtered: dict[str, str], flt: Any) -> None:
    failed = error(lambda: s3v.query_vectors(**filtered, topK=1, queryVector={"float32": [1, 0, 0]}, filter=flt))
    assert failed["Code"] == "ValidationException"


# --- Writes as the product makes them: one vector per S3 object, overwritten and deleted ------


def test_overwrite_replaces_data_and_metadata(s3v: Any, make_index: Any) -> None:
    where = make_index()
    put(s3v, where, {"photo.jpg": ([1, 0, 0], {"tags": ["cat"], "etag": "v1"})})
    put(s3v, where, {"photo.jpg": ([0, 1, 0], {"tags": ["dog"]})})

    got = s3v.get_vectors(**where, keys=["photo.jpg"], returnData=True, returnMetadata=True)["vectors"]
    assert got == [{"key": "photo.jpg", "data": {"float32": [0.0, 1.0, 0.0]}, "metadata": {"tags": ["dog"]}}]
    assert keys(s3v.list_vectors(**where)) == ["photo.jpg"]
    query = {**where, "topK": 5, "queryVector": {"float32": [0, 1, 0]}}
    assert s3v.query_vectors(**query, returnDistance=True)["vectors"] == [{"key": "photo.jpg", "distance": 0.0}]
    assert keys(s3v.query_vectors(**query, filter={"tags": "cat"})) == []


def test_deleted_vector_leaves_query_results(s3v: Any, make_index: Any) -> None:
    where = make_index()
    put(s3v, where, {"a": ([1, 0, 0], None), "b": ([0, 1, 0], None)})
    query = {**where, "topK": 5, "queryVector": {"float32": [1, 0, 0]}}
    assert keys(s3v.query_vectors(**query)) == ["a", "b"]

    s3v.delete_vectors(**where, keys=["a", "never-there"])
    assert keys(s3v.query_vectors(**query)) == ["b"]
    s3v.delete_vectors(**where, keys=["b"])
    assert keys(s3v.query_vectors(**query)) == []


def test_data_is_stored_as_float32_and_metadata_round_trips(s3v: Any, make_index: Any) -> None:
    where = make_index()
    metadata = {"s": "é ✓", "i": 7, "f": 0.25, "b": False, "tags": ["x", "y"]}
    put(s3v, where, {"k": ([0.1, 0.2, 1e-3], metadata)})

    assert s3v.get_vectors(**where, keys=["k"])["vectors"] == [{"key": "k"}]  # nothing unless asked
    got = s3v.get_vectors(**where, keys=["k", "missing"], returnData=True, returnMetadata=True)["vectors"]
    assert [v["key"] for v in got] == ["k"]
    assert got[0]["metadata"] == metadata
    # AWS stores float32: what comes back is the float32 nearest what was sent, not the float64.
    assert got[0]["data"]["float32"] == [0.10000000149011612, 0.20000000298023224, 0.0010000000474974513]
    assert s3v.get_vectors(**where, keys=["k"], returnData=True)["vectors"][0].keys() == {"key", "data"}


def test_index_keeps_its_metadata_configuration(s3v: Any, make_index: Any) -> None:
    where = make_index(non_filterable=["caption", "source"])
    index = s3v.get_index(**where)["index"]
    assert index["metadataConfiguration"] == {"nonFilterableMetadataKeys": ["caption", "source"]}
    assert "creationTime" in index
    assert "metadataConfiguration" not in s3v.get_index(**make_index())["index"]


def test_creating_an_existing_index_conflicts_and_keeps_its_vectors(s3v: Any, make_index: Any) -> None:
    where = make_index()
    put(s3v, where, {"a": ([1, 0, 0], None)})
    failed = error(lambda: s3v.create_index(**where, dataType="float32", dimension=3, distanceMetric="cosine"))
    assert (failed["Code"], failed["status"]) == ("ConflictException", 409)
    assert keys(s3v.list_vectors(**where)) == ["a"]


def test_more_than_ten_non_filterable_keys_are_rejected(s3v: Any) -> None:
    s3v.create_vector_bucket(vectorBucketName="vb-eleven")
    failed = error(
        lambda: s3v.create_index(
            vectorBucketName="vb-eleven",
            indexName="idx",
            dataType="float32",
            dimension=3,
            distanceMetric="cosine",
            metadataConfiguration={"nonFilterableMetadataKeys": [f"k{i}" for i in range(11)]},
        )
    )
    assert failed["Code"] == "ValidationException"


# --- Documented limits -------------------------------------------------------------------------


def test_put_vectors_takes_at_most_500_vectors(s3v: Any, make_index: Any) -> None:
    where = make_index()
    batch = {f"k{i}": ([1, 0, i], None) for i in range(501)}
    failed = error(lambda: put(s3v, where, batch))
    assert failed["Code"] == "ValidationException" and "500" in failed["Message"]
    put(s3v, where, dict(list(batch.items())[:500]))
    assert len(s3v.query_vectors(**where, topK=100, queryVector={"float32": [1, 0, 0]})["vectors"]) == 100


def test_vector_keys_are_at_most_1024_characters(s3v: Any, make_index: Any) -> None:
    where = make_index()
    put(s3v, where, {"k" * 1024: ([1, 0, 0], None)})
    assert error(lambda: put(s3v, where, {"k" * 1025: ([1, 0, 0], None)}))["Code"] == "ValidationException"
    too_long = error(lambda: s3v.get_vectors(**where, keys=["k" * 1025]))
    assert too_long["Code"] == "ValidationException"


@pytest.mark.parametrize("data", [[float("nan"), 0, 0], [float("inf"), 0, 0], [1e39, 0, 0], [0, 0, 0], [1, 0]], ids=str)
def test_invalid_vector_data_is_rejected(s3v: Any, make_index: Any, data: list[float]) -> None:
    """NaN, infinity (or beyond float32), a zero vector under cosine, the wrong dimension."""
    where = make_index()
    assert error(lambda: put(s3v, where, {"k": (data, None)}))["Code"] == "ValidationException"
    assert keys(s3v.list_vectors(**where)) == []


def test_metadata_size_and_key_limits(s3v: Any, make_index: Any) -> None:
    where = make_index(non_filterable=["caption"])
    big = "x" * 3000
    assert error(lambda: put(s3v, where, {"k": ([1, 0, 0], {"note": big})}))["Code"] == "ValidationException"
    put(s3v, where, {"k": ([1, 0, 0], {"caption": big})})  # non-filterable metadata may be larger than 2 KB
    huge = {"caption": "x" * 41_000}
    assert error(lambda: put(s3v, where, {"k": ([1, 0, 0], huge)}))["Code"] == "ValidationException"
    fifty = {f"k{i}": i for i in range(50)}
    put(s3v, where, {"k": ([1, 0, 0], fifty)})
    many = {**fifty, "one-more": 1}
    assert error(lambda: put(s3v, where, {"k": ([1, 0, 0], many)}))["Code"] == "ValidationException"


def test_get_and_delete_key_counts_are_limited(s3v: Any, make_index: Any) -> None:
    where = make_index()
    assert error(lambda: s3v.get_vectors(**where, keys=[f"k{i}" for i in range(101)]))["Code"] == "ValidationException"
    assert error(lambda: s3v.delete_vectors(**where, keys=[f"k{i}" for i in range(501)]))["Code"] == (
        "ValidationException"
    )


def test_list_vectors_pages_and_segments(s3v: Any, make_index: Any) -> None:
    where = make_index()
    put(s3v, where, {f"k{i}": ([1, 0, i], None) for i in range(7)})

    pages, token = [], None
    while True:
        page = s3v.list_vectors(**where, maxResults=3, **({"nextToken": token} if token else {}))
        pages.append(keys(page))
        if not (token := page.get("nextToken")):
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sorted(k for p in pages for k in p) == [f"k{i}" for i in range(7)]

    segments = [keys(s3v.list_vectors(**where, segmentCount=3, segmentIndex=i)) for i in range(3)]
    assert sorted(k for s in segments for k in s) == [f"k{i}" for i in range(7)]  # each key in one segment


# --- Installation --------------------------------------------------------------------------------


def test_install_is_idempotent() -> None:
    from moto.s3vectors import urls
    from moto.s3vectors.models import S3VectorsBackend

    moto_patches.install()
    before = S3VectorsBackend.put_vectors
    s3vectors.install()
    assert S3VectorsBackend.put_vectors is before
    assert sum("QueryVectors" in path for path in urls.url_paths) == 1


def test_query_vectors_in_a_moto_patches_server_process() -> None:
    """`python -m devstack.moto_patches` (the devstack's separate-process emulator) answers it too."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "devstack.moto_patches", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = _client(port)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_vector_bucket(vectorBucketName="vb-process")
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        client.create_index(
            vectorBucketName="vb-process", indexName="idx", dataType="float32", dimension=2, distanceMetric="cosine"
        )
        client.put_vectors(
            vectorBucketName="vb-process", indexName="idx", vectors=[{"key": "a", "data": {"float32": [1, 0]}}]
        )
        found = client.query_vectors(
            vectorBucketName="vb-process", indexName="idx", topK=1, queryVector={"float32": [1, 0]}
        )
        assert keys(found) == ["a"]
    finally:
        server.terminate()
        server.wait(timeout=10)
