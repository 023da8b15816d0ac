"""On-demand prices (USD, us-east-1) the dry runs estimate with; docs/lifecycle.md gives sources."""

S3_LIST_PER_REQUEST = 0.005 / 1000  # LIST, per request (up to 1,000 keys)
S3_INVENTORY_PER_OBJECT = 0.0025 / 1e6  # objects listed in an inventory report
SQS_PER_REQUEST = 0.40 / 1e6  # standard queue, per 64 KB request (a batch of 10 is one)
DYNAMODB_PER_RRU = 0.125 / 1e6  # on-demand read request unit
DYNAMODB_PER_WRU = 0.625 / 1e6  # on-demand write request unit
# Tagging one new image through the stack (Lambda at 3,538 MB, SQS, S3 GET, DynamoDB writes):
# the benchmark's all-in figure at modelled AWS latency, x86_64 (docs/performance.md).
TAGGING_PER_IMAGE = 0.0189 / 1000
# Captioning one content (Captions=On): the caption function's time (BLIP-base, a 12-token
# caption) at 3,538 MB x86_64, its holders' re-tag writes, an S3 GET and the SQS requests
# (docs/captions.md).
CAPTION_PER_CAPTION = (0.0404 + 0.0044 + 0.0016) / 1000
# A re-tag runs no model: Lambda time per object is the re-scoring and the writes (~2 ms).
RETAG_LAMBDA_PER_OBJECT = 0.002 * 3.455 * 0.0000166667
# Amazon S3 Vectors (us-east-1; AWS's S3 pricing page): queries are charged per call plus the
# data they process, which is the index's size (its vectors, keys and filterable metadata):
# per TB at one rate for the first 100,000 vectors of an index and at another beyond.
S3_VECTORS_QUERY_PER_CALL = 2.50 / 1e6
S3_VECTORS_QUERY_PER_TB_FIRST_100K = 0.004
S3_VECTORS_QUERY_PER_TB_OVER_100K = 0.002
S3_VECTORS_PUT_PER_GB = 0.20  # logical data written (vectors + metadata)
S3_VECTORS_STORAGE_PER_GB_MONTH = 0.06


def vector_query_cost(index_vectors: int, vector_bytes: float) -> float:
    """One QueryVectors call on an index of ``index_vectors`` of ``vector_bytes`` each (USD)."""
    first, beyond = min(index_vectors, 100_000), max(0, index_vectors - 100_000)
    return (
        S3_VECTORS_QUERY_PER_CALL
        + first * vector_bytes / 1e12 * S3_VECTORS_QUERY_PER_TB_FIRST_100K
        + beyond * vector_bytes / 1e12 * S3_VECTORS_QUERY_PER_TB_OVER_100K
    )
