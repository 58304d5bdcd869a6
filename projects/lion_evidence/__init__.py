"""Lion against AdamW: the evidence kit (see README.md here)."""
