"""Lambda entry points: thin adapters from events to the cliptag domain."""
