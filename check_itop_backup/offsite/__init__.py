"""Copies in S3-compatible object storage: where they go, the store, upload, download."""


def require_modules() -> None:
    """Raise ValueError when boto3 or pyrage, this layer's optional modules (the ``[offsite]``
    extra), are missing."""
    try:
        import boto3  # noqa: F401
        import pyrage  # noqa: F401
    except ImportError as error:
        raise ValueError(f"copies in object storage need {error.name}: pip install "
                         "'check_itop_backup[offsite]'") from None
