"""The accuracy harness: ``python -m model_export evaluate`` (see docs/accuracy.md)."""
