"""``cliptag``: the commands a user runs against a deployed (or the local) stack: backfill,
retag, failures, enable-eventbridge. They call the same domain and adapters as the functions."""
