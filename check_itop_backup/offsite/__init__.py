"""Copies in S3-compatible object storage: where they go, the store, upload, download."""
