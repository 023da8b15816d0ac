"""``cliptag verify``: fsck for the library (snapshot -> drift -> repair; command)."""
