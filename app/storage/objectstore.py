"""S3-compatible object storage, through pyarrow's S3 filesystem.

Credentials come from the environment, never from a file in the data directory:
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`, `AWS_REGION`
and `AWS_ENDPOINT_URL` (for an S3-compatible server such as MinIO, Ceph or a test server).
They are never printed: errors name the bucket and key only.

DuckDB's own S3 reader (the httpfs extension) is downloaded by DuckDB at run time and is not
published on PyPI for the DuckDB version this project uses, so object storage is read with
pyarrow and handed to DuckDB as an Arrow dataset, which DuckDB scans with its filters pushed
down: the partition pruning happens in pyarrow, before any file is opened.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse


def s3_filesystem():
    from pyarrow.fs import S3FileSystem

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
    kwargs = {
        "access_key": os.environ.get("AWS_ACCESS_KEY_ID"),
        "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "session_token": os.environ.get("AWS_SESSION_TOKEN"),
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    }
    if endpoint:
        url = urlparse(endpoint)
        kwargs["endpoint_override"] = url.netloc or url.path
        kwargs["scheme"] = url.scheme or "https"
    return S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None})
