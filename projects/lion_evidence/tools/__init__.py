"""The tools of the Lion-vs-AdamW evidence (run them from the repository root)."""
