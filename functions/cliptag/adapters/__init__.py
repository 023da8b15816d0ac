"""Adapters: the only modules that talk to AWS (or parse its event formats). The domain in
``cliptag`` depends on its ports (``cliptag.ports``), never on these."""
