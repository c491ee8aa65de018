"""The IBlobStore contract, run against the filesystem store and the in-memory fake."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from pypid.blobs.filesystem import BadKey, FilesystemBlobs
from pypid.blobs.s3 import S3Blobs, S3Error, S3Settings
from pypid.interfaces import IBlobStore
from pypid.testing import MemoryBlobs


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server (the S3 wire protocol over HTTP) on 127.0.0.1, for this module."""
    yield from moto_s3()


def moto_s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_store(endpoint: str, data_dir: Path, bucket: str) -> S3Blobs:
    store = S3Blobs(data_dir, S3Settings(bucket, "pypid/", endpoint, "us-east-1", "path"))
    store.client.create_bucket(Bucket=bucket)
    return store


@pytest.fixture(params=["filesystem", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> IBlobStore:
    if request.param == "filesystem":
        return FilesystemBlobs(tmp_path)
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        return s3_store(endpoint, tmp_path, f"b-{abs(hash(str(tmp_path))) % 10**12}")
    return MemoryBlobs(tmp_path / "tmp")


def write_temp(store: IBlobStore, data: bytes) -> str:
    with store.new_temp() as stream:
        stream.write(data)
        name = stream.name
    store.sync_temp(name)
    return str(name)


def test_provides_the_interface(store: IBlobStore) -> None:
    """Both implementations provide IBlobStore."""
    assert verifyObject(IBlobStore, store)


def test_commit_open_verify_delete(store: IBlobStore) -> None:
    """A committed temp file is readable under its sha256, verifiable, and deletable."""
    data = b"wheel bytes" * 1000
    key = hashlib.sha256(data).hexdigest()
    temp = write_temp(store, data)
    store.commit(temp, key)
    assert not os.path.exists(temp)
    stream = store.open(key)
    assert stream is not None
    with stream:
        assert stream.read() == data
    assert store.verify(key)
    assert store.keys() == [key]
    store.delete(key)
    assert store.open(key) is None
    assert not store.verify(key)
    store.delete(key)  # deleting twice is fine


def test_commit_is_idempotent(store: IBlobStore) -> None:
    """Committing the same content twice keeps one blob and drops the second temp file."""
    data = b"same"
    key = hashlib.sha256(data).hexdigest()
    store.commit(write_temp(store, data), key)
    second = write_temp(store, data)
    store.commit(second, key)
    assert not os.path.exists(second)
    assert store.keys() == [key]


def test_put_bytes_and_sweep(store: IBlobStore) -> None:
    """Small content is stored by hash; temp leftovers nobody owns are swept, and the
    temp files of a store whose process lives are kept."""
    key = store.put_bytes(b"metadata")
    assert key == hashlib.sha256(b"metadata").hexdigest()
    assert store.verify(key)
    with store.new_temp() as stream:
        stream.write(b"half an upload, still arriving")
    (Path(store.temp_dir) / "blob-0123456789ab-7.part").write_bytes(b"left by a dead process")
    assert store.sweep_temp() == 1
    assert os.path.exists(stream.name)
    assert store.sweep_temp() == 0


def test_discard(store: IBlobStore) -> None:
    """A discarded temp file is gone and nothing is stored."""
    temp = write_temp(store, b"refused")
    store.discard(temp)
    assert not os.path.exists(temp)
    assert store.keys() == []


def test_filesystem_layout_and_corruption(tmp_path: Path) -> None:
    """Blobs live at blobs/sha256/ab/<key>; a changed byte fails verification."""
    store = FilesystemBlobs(tmp_path)
    key = store.put_bytes(b"content")
    path = tmp_path / "blobs" / "sha256" / key[:2] / key
    assert path.read_bytes() == b"content"
    path.write_bytes(b"Content")
    assert not store.verify(key)


@pytest.mark.parametrize("key", ["../../etc/passwd", "A" * 64, "0" * 63, "", "0" * 64 + "/x"])
def test_keys_never_become_arbitrary_paths(tmp_path: Path, key: str) -> None:
    """Only 64 lowercase hex digits are keys; anything else never reaches the file system."""
    store = FilesystemBlobs(tmp_path)
    with pytest.raises(BadKey):
        store.path(key)
    assert store.open(key) is None


def test_only_own_temp_files_are_committed(tmp_path: Path) -> None:
    """A path outside the store's temp dir cannot be moved into the store."""
    store = FilesystemBlobs(tmp_path / "data")
    outside = tmp_path / "outside"
    outside.write_bytes(b"x")
    with pytest.raises(ValueError, match="temp files"):
        store.commit(str(outside), hashlib.sha256(b"x").hexdigest())
    assert outside.exists()


def test_two_level_stores_are_moved_to_one_level(tmp_path: Path) -> None:
    """A store of pypid 0.1 (blobs/sha256/ab/cd/<key>) is moved over when first opened,
    also after an interrupted move; files that are not blobs stay where they are."""
    root = tmp_path / "blobs" / "sha256"
    contents = [b"one", b"two", b"three"]
    keys = [hashlib.sha256(data).hexdigest() for data in contents]
    for key, data in zip(keys, contents, strict=True):
        (root / key[:2] / key[2:4]).mkdir(parents=True, exist_ok=True)
        (root / key[:2] / key[2:4] / key).write_bytes(data)
    (root / keys[0][:2]).mkdir(exist_ok=True)
    os.replace(root / keys[0][:2] / keys[0][2:4] / keys[0], root / keys[0][:2] / keys[0])
    stray = root / keys[1][:2] / keys[1][2:4] / "notes.txt"
    stray.write_text("kept")
    store = FilesystemBlobs(tmp_path)
    assert store.keys() == sorted(keys)
    for key, data in zip(keys, contents, strict=True):
        stream = store.open(key)
        assert stream is not None and stream.read() == data
        stream.close()
        assert store.verify(key)
    assert stray.read_text() == "kept"
    assert not (root / keys[2][:2] / keys[2][2:4]).exists()
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        f"{n:02x}" for n in range(256)]
    assert FilesystemBlobs(tmp_path).keys() == sorted(keys)  # marked: no second move


def test_s3_objects_and_the_local_copy(s3_endpoint: str, tmp_path: Path) -> None:
    """Objects at PREFIX/sha256/ab/<key>; a lost local copy is fetched again (and checked);
    a changed object is no blob; a bucket that is not there stops a start."""
    store = s3_store(s3_endpoint, tmp_path / "a", "bucket-local-copy")
    key = store.put_bytes(b"content")
    listed = store.client.list_objects_v2(Bucket="bucket-local-copy")["Contents"]
    assert [item["Key"] for item in listed] == [f"pypid/sha256/{key[:2]}/{key}"]
    store.local.delete(key)
    assert store.open_local(key) is None  # the fast lane never waits for the network
    stream = store.open(key)
    assert stream is not None
    with stream:
        assert stream.read() == b"content"
    local = store.open_local(key)
    assert local is not None
    local.close()
    store.client.put_object(Bucket="bucket-local-copy", Key=store.key(key), Body=b"changed")
    store.local.delete(key)
    assert store.open(key) is None and not store.verify(key)
    assert store.modified(key) is not None
    missing = S3Blobs(tmp_path / "b", S3Settings("no-such-bucket", "", s3_endpoint,
                                                 "us-east-1", "path"))
    with pytest.raises(S3Error, match="no-such-bucket"):
        missing.check()
    unreachable = S3Blobs(tmp_path / "c", S3Settings("x-bucket", "", "http://127.0.0.1:9",
                                                     "us-east-1", "path"))
    with pytest.raises(S3Error, match="cannot reach"):
        unreachable.check()


SWEEP_CHILD = """
import sys
from pathlib import Path
from pypid.blobs.filesystem import FilesystemBlobs

stream = FilesystemBlobs(Path(sys.argv[1])).new_temp()
stream.write(b"an upload in another daemon")
stream.flush()
print(stream.name, flush=True)
sys.stdin.readline()
"""


def test_sweep_keeps_a_living_process_temp_files(tmp_path: Path) -> None:
    """A daemon starting on a shared data dir leaves another daemon's uploads alone, and
    removes them once that process is gone (here, by SIGKILL)."""
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-c", SWEEP_CHILD, str(tmp_path)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as other:
        assert other.stdout is not None
        name = other.stdout.readline().strip()
        starting = FilesystemBlobs(tmp_path)
        assert starting.sweep_temp() == 0
        assert os.path.exists(name)
        other.kill()
        other.wait(timeout=30)
    assert FilesystemBlobs(tmp_path).sweep_temp() == 1
    assert not os.path.exists(name)
    assert list((tmp_path / "tmp-owners").iterdir()) == []
