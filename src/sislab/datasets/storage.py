"""One way to reach a dataset: ``pyarrow.fs`` for local folders and ``s3://`` prefixes.

Credentials are never read, stored or logged here: ``pyarrow.fs.S3FileSystem`` resolves them itself
through the standard AWS chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` environment
variables, ``~/.aws`` profiles, instance metadata). Only the endpoint and region are configurable.
"""

from __future__ import annotations

import logging
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pyarrow.fs as pafs

from sislab.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StorageOptions:
    """How to reach an S3-compatible store; both fields fall back to the AWS environment.

    Attributes:
        endpoint_override: ``http(s)://host:port`` of an S3-compatible endpoint (MinIO, moto);
            default ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, else AWS itself.
        region: S3 region; default ``AWS_REGION`` or ``AWS_DEFAULT_REGION``.
    """

    endpoint_override: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Location:
    """A resolved dataset root: a filesystem plus a path inside it (no scheme).

    Attributes:
        fs: The pyarrow filesystem.
        root: Root path inside ``fs`` (``bucket/prefix`` on S3, an absolute path locally).
        uri: The URI as the user wrote it, for messages (it never holds credentials).
    """

    fs: pafs.FileSystem
    root: str
    uri: str

    def path(self, relative: str) -> str:
        """Path of ``relative`` (a manifest path, '/'-separated) inside this root."""
        return posixpath.join(self.root, relative)

    def display(self, relative: str) -> str:
        """``relative`` joined to the URI, for messages."""
        return self.uri.rstrip("/") + "/" + relative


class RetryingS3FileSystem(pafs.S3FileSystem):
    """``S3FileSystem`` with AWS's standard retries over ``max_attempts`` tries, kept when pickled.

    pyarrow's own pickling drops ``retry_strategy`` (the copy Ray hands to trials and Train
    workers would retry 3 times, ~1.5 s); this class rebuilds it with the same attempts.

    Args:
        max_attempts: Tries of each request (backoff with jitter, at most 20 s between tries).
        options: ``S3FileSystem`` arguments (endpoint, scheme, region).
    """

    def __init__(self, max_attempts: int, options: dict[str, str]) -> None:
        strategy = pafs.AwsStandardS3RetryStrategy(max_attempts=max_attempts)
        super().__init__(retry_strategy=strategy, **options)
        self.max_attempts, self.options = max_attempts, dict(options)

    def __reduce__(self):
        return RetryingS3FileSystem, (self.max_attempts, self.options)


def s3_filesystem(options: StorageOptions, max_attempts: int | None = None) -> pafs.S3FileSystem:
    """An ``S3FileSystem`` with the endpoint and region of ``options`` (credentials: AWS chain);
    with ``max_attempts``, one that retries each request that often (``RetryingS3FileSystem``)."""
    endpoint = (
        options.endpoint_override
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    region = options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    kwargs: dict[str, str] = {}
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        kwargs["endpoint_override"] = parts.netloc
        kwargs["scheme"] = parts.scheme
    if region:
        kwargs["region"] = region
    log.debug("S3 filesystem endpoint=%s region=%s", endpoint or "aws", region or "default")
    if max_attempts is not None:
        return RetryingS3FileSystem(max_attempts, kwargs)
    return pafs.S3FileSystem(**kwargs)


def resolve(uri: str, options: StorageOptions | None = None) -> Location:
    """Resolve a local path or ``s3://bucket/prefix[?endpoint_override=..&region=..]``.

    Args:
        uri: Dataset root.
        options: Endpoint and region; query parameters of the URI take precedence.

    Returns:
        The filesystem and root path.

    Raises:
        DataError: An unsupported scheme.
    """
    options = options or StorageOptions()
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - {"endpoint_override", "region"}
        if unknown:
            raise DataError(
                f"unknown query parameter(s) {sorted(unknown)} in {uri.split('?')[0]}",
                fix="use only endpoint_override and region",
            )
        options = StorageOptions(
            endpoint_override=query.get("endpoint_override", options.endpoint_override),
            region=query.get("region", options.region),
        )
        root = (parts.netloc + parts.path).rstrip("/")
        return Location(s3_filesystem(options), root, uri.split("?")[0])
    if parts.scheme in ("", "file"):
        local = parts.path if parts.scheme == "file" else uri
        return Location(pafs.LocalFileSystem(), str(Path(local).expanduser().resolve()), uri)
    raise DataError(
        f"unsupported dataset URI scheme {parts.scheme!r} in {uri!r}",
        fix="use a local folder, s3://bucket/prefix or synthetic://shapes?...",
    )


def read_bytes(fs: pafs.FileSystem, path: str) -> bytes:
    """Whole file contents."""
    with fs.open_input_stream(path) as stream:
        return stream.readall()


def write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write a file whole; locally through a temporary name and a rename, so readers never see a
    partial file (an S3 PUT is atomic already)."""
    parent = posixpath.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = path + ".tmp"
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        os.replace(tmp, path)
    else:
        with fs.open_output_stream(path) as out:
            out.write(data)


def exists(fs: pafs.FileSystem, path: str) -> bool:
    """Whether ``path`` is an existing file."""
    return fs.get_file_info(path).type == pafs.FileType.File
