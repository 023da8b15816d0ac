"""cliptag: CLIP zero-shot image tagging for S3 buckets.

The domain (records, pipeline, steps, scoring, imaging, encoder, bundle, vocabulary, keys,
queries, tokens) imports no AWS SDK (tests/unit/test_import_boundary.py); AWS calls live in
``cliptag.adapters`` (dynamodb, s3, notifications), joined to the domain by ``wiring``.
"""

__version__ = "0.1.0"
