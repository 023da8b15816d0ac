"""cliptag: CLIP zero-shot image tagging for S3 buckets.

The domain modules here (imaging, encoder, bundle, scoring, keys, events, tagging) import no
AWS SDK; AWS calls live in ``store`` (DynamoDB) and ``objects`` (S3) only.
"""

__version__ = "0.1.0"
