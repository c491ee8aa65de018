"""IBlobStore on S3-compatible object storage (AWS S3, MinIO, Ceph RGW, R2, GCS interop),
with boto3, called from worker threads like every IBlobStore.

Objects live at PREFIX + "sha256/ab/<sha256>". An upload's temp file is put with its
SHA-256 checksum (S3 refuses a body that does not match it) and its size checked after the
put; only then does the caller commit the row, so a crash leaves at most an orphan object
(for GC), never a row without its object. The data dir keeps a local copy of each blob it
put or read (the store's local part, a FilesystemBlobs): downloads are sent from it with
sendfile, as from the file store; it is a cache, any of it may be deleted at any time.

Credentials come from boto3's usual chain (environment, shared config and credentials
files, instance roles) and never from pypid's settings, so they appear in no log.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from zope.interface import implementer

from pypid.blobs.filesystem import CHUNK, FilesystemBlobs, check_key
from pypid.interfaces import IBlobStore


class S3Error(RuntimeError):
    """The object store failed or refused; the message says what, never a credential."""


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"  # auto, path or virtual
    verify_tls: bool = True


STORE_FILE = "blob-store.json"  # in the data dir: where its blobs are (no credentials)


def remember(data_dir: Path, settings: S3Settings | None) -> None:
    """The daemon notes its blob store in the data dir, for the admin CLI (fsck)."""
    import dataclasses
    import json

    path = data_dir / STORE_FILE
    if settings is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(json.dumps({"kind": "s3", **dataclasses.asdict(settings)}, indent=2))


def remembered(data_dir: Path) -> S3Settings | None:
    import json

    path = data_dir / STORE_FILE
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    document.pop("kind", None)
    return S3Settings(**document)


def client_for(settings: S3Settings) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region,
        verify=settings.verify_tls,
        config=Config(s3={"addressing_style": settings.addressing_style},
                      signature_version="s3v4",
                      retries={"max_attempts": 5, "mode": "standard"},
                      connect_timeout=10, read_timeout=60))


@implementer(IBlobStore)
class S3Blobs:
    def __init__(self, data_dir: Path, settings: S3Settings, client: Any = None,
                 keep_local: bool = True) -> None:
        self.settings = settings
        self.keep_local = keep_local  # False (--download proxy): no local copy of uploads
        self.local = FilesystemBlobs(data_dir)
        self.temp_dir = self.local.temp_dir
        self.client = client if client is not None else client_for(settings)

    def key(self, sha256: str) -> str:
        check_key(sha256)
        return f"{self.settings.prefix}sha256/{sha256[:2]}/{sha256}"

    def check(self) -> None:
        """At start: the bucket exists and these credentials may use it."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.settings.bucket)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            raise S3Error(f"the bucket {self.settings.bucket!r} cannot be used "
                          f"(S3 answered {code})") from None
        except BotoCoreError as error:
            raise S3Error(f"cannot reach the object store: {error.__class__.__name__}") \
                from None

    # -- temp files: the local part's ------------------------------------------------------

    def new_temp(self) -> IO[bytes]:
        return self.local.new_temp()

    def sync_temp(self, temp_path: str) -> None:
        """Nothing to make durable here: the verified put is what makes a blob durable."""

    def discard(self, temp_path: str) -> None:
        self.local.discard(temp_path)

    def sweep_temp(self) -> int:
        return self.local.sweep_temp()

    # -- blobs -----------------------------------------------------------------------------

    def commit(self, temp_path: str, sha256: str) -> None:
        """Put the temp file under its key, S3 checking its SHA-256; check the size; then
        keep it as the local copy. Idempotent (an object already there is kept)."""
        size = os.path.getsize(temp_path)
        if self._size(sha256) != size:
            self._put(temp_path, sha256, size)
        if not self.keep_local:
            self.local.discard(temp_path)
            return
        self.local.sync_temp(temp_path)
        self.local.commit(temp_path, sha256)

    def _put(self, temp_path: str, sha256: str, size: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        checksum = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
        try:
            with open(temp_path, "rb") as body:
                self.client.put_object(Bucket=self.settings.bucket, Key=self.key(sha256),
                                       Body=body, ContentLength=size,
                                       ChecksumSHA256=checksum,
                                       ContentType="application/octet-stream")
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            raise S3Error(f"the object store refused the blob (S3 answered {code})") from None
        except BotoCoreError as error:
            raise S3Error(f"cannot reach the object store: {error.__class__.__name__}") \
                from None
        if self._size(sha256) != size:
            raise S3Error("the object store holds another size than was put")

    def _size(self, sha256: str) -> int | None:
        head = self._head(sha256)
        return None if head is None else int(head["ContentLength"])

    def _head(self, sha256: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.settings.bucket,
                                                           Key=self.key(sha256))
            return head
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey",
                                                               "NotFound"):
                return None
            raise S3Error("the object store failed a lookup") from None
        except BotoCoreError as error:
            raise S3Error(f"cannot reach the object store: {error.__class__.__name__}") \
                from None

    def put_bytes(self, data: bytes) -> str:
        with self.new_temp() as stream:
            stream.write(data)
            name = str(stream.name)
        sha256 = hashlib.sha256(data).hexdigest()
        try:
            self.commit(name, sha256)
        except BaseException:
            self.discard(name)
            raise
        return sha256

    def open(self, sha256: str) -> IO[bytes] | None:
        """The local copy, fetched (and checked against its key) if it is not there."""
        try:
            check_key(sha256)
        except ValueError:
            return None
        local = self.local.open(sha256)
        if local is not None:
            return local
        if not self._fetch(sha256):
            return None
        return self.local.open(sha256)

    def open_local(self, sha256: str) -> IO[bytes] | None:
        return self.local.open(sha256)

    def _fetch(self, sha256: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.sha256()
        with self.new_temp() as stream:
            name = str(stream.name)
            try:
                answer = self.client.get_object(Bucket=self.settings.bucket,
                                                Key=self.key(sha256))
                for chunk in answer["Body"].iter_chunks(CHUNK):
                    digest.update(chunk)
                    stream.write(chunk)
            except ClientError as error:
                self.discard(name)
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return False
                raise S3Error("the object store failed a read") from None
            except BotoCoreError as error:
                self.discard(name)
                raise S3Error(f"cannot reach the object store: "
                              f"{error.__class__.__name__}") from None
        if digest.hexdigest() != sha256:
            self.discard(name)
            return False  # a changed object is no blob (fsck reports it)
        self.local.sync_temp(name)
        self.local.commit(name, sha256)
        return True

    def delete(self, sha256: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.settings.bucket, Key=self.key(sha256))
        except (ClientError, BotoCoreError):
            raise S3Error("the object store failed a delete") from None
        self.local.delete(sha256)

    def verify(self, sha256: str) -> bool:
        """Does the object (not the local copy) still hash to its key?"""
        from botocore.exceptions import ClientError

        digest = hashlib.sha256()
        try:
            answer = self.client.get_object(Bucket=self.settings.bucket,
                                            Key=self.key(sha256))
        except ClientError:
            return False
        for chunk in answer["Body"].iter_chunks(CHUNK):
            digest.update(chunk)
        return digest.hexdigest() == sha256

    def keys(self) -> list[str]:
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.settings.prefix}sha256/"
        for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                try:
                    found.append(check_key(name))
                except ValueError:
                    continue
        return sorted(found)

    def modified(self, sha256: str) -> float | None:
        head = self._head(sha256)
        return None if head is None else float(head["LastModified"].timestamp())

    def read_range(self, sha256: str, offset: int, length: int) -> bytes:
        """Bytes offset to offset + length of the object, from the bucket (--download
        proxy: no local copy is kept)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(
                Bucket=self.settings.bucket, Key=self.key(sha256),
                Range=f"bytes={offset}-{offset + length - 1}")
            data: bytes = answer["Body"].read()
            return data
        except (ClientError, BotoCoreError):
            raise S3Error("the object store failed a read") from None

    def presigned_url(self, sha256: str, filename: str, seconds: int) -> str:
        """A URL the client may GET the object from, for seconds, named filename."""
        disposition = 'attachment; filename="' + filename.replace('"', "") + '"'
        url: str = self.client.generate_presigned_url(
            "get_object", ExpiresIn=seconds, Params={
                "Bucket": self.settings.bucket, "Key": self.key(sha256),
                "ResponseContentDisposition": disposition,
                "ResponseContentType": "application/octet-stream"})
        return url
