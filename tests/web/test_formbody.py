"""Upload bodies parsed while they arrive: batches, backpressure, refusals, clean-up."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import IO, Any

import pytest

from pypid.blobs.filesystem import FilesystemBlobs
from pypid.dists.form import FormError, FormParser
from pypid.testing import ManualRunner
from pypid.web import formbody
from pypid.web.formbody import StreamedFormBody
from tests.dists import upload_form, wheel_bytes, wheel_filename
from tests.web.helpers import new_client


class Transport:
    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0

    def pauseProducing(self) -> None:
        assert not self.paused
        self.paused, self.pauses = True, self.pauses + 1

    def resumeProducing(self) -> None:
        assert self.paused
        self.paused = False


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formbody, "BATCH", 4096)
    monkeypatch.setattr(formbody, "HIGH_WATER", 16384)


def make_body(blobs: FilesystemBlobs, content_type: str) -> tuple[StreamedFormBody, ManualRunner,
                                                                  Transport]:
    worker, transport = ManualRunner(), Transport()
    return StreamedFormBody(FormParser(content_type, blobs.new_temp), worker.run,
                            transport), worker, transport


def form_chunks(content: bytes, size: int = 1024) -> tuple[list[bytes], str]:
    body, headers = upload_form(wheel_filename("pkg", "1.0"), content, "pkg", "1.0")
    return [body[i:i + size] for i in range(0, len(body), size)], headers["Content-Type"]


def temp_files(blobs: FilesystemBlobs) -> list[Path]:
    return list(blobs.temp_dir.iterdir())


@pytest.mark.usefixtures("small_batches")
def test_batches_with_backpressure_give_the_whole_file(tmp_path: Path) -> None:
    blobs = FilesystemBlobs(tmp_path)
    content = wheel_bytes("pkg", "1.0", padding=200_000)
    chunks, content_type = form_chunks(content)
    body, worker, transport = make_body(blobs, content_type)
    for chunk in chunks:
        if transport.paused:
            worker.step()  # the worker catches up: reading resumes
            assert not transport.paused
        body.write(chunk)
        assert len(worker.jobs) <= 1, "one batch at a time"
    assert transport.pauses > 0
    settled = body.settled()
    worker.drain()
    assert settled.called
    form = body.finish()
    assert form.file is not None
    assert form.file.sha256 == hashlib.sha256(content).hexdigest()
    assert Path(form.file.temp_path).read_bytes() == content
    body.close()  # the upload job owns the temp file now: close leaves it
    worker.drain()
    assert Path(form.file.temp_path).exists()


@pytest.mark.usefixtures("small_batches")
def test_a_malformed_body_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    blobs = FilesystemBlobs(tmp_path)
    chunks, content_type = form_chunks(wheel_bytes("pkg", "1.0", padding=100_000))
    body, worker, transport = make_body(blobs, content_type)
    for chunk in chunks[:40]:
        body.write(chunk)
        worker.drain()
    body.write(b"--not-the-boundary--\r\n" * 4)  # the form's end never comes
    worker.drain()
    settled = body.settled()
    worker.drain()
    assert settled.called and not transport.paused
    with pytest.raises(FormError, match="end of multipart|ended early"):
        body.finish()
    assert temp_files(blobs) == []


@pytest.mark.usefixtures("small_batches")
def test_a_failing_batch_drops_the_rest_and_resumes_reading(tmp_path: Path) -> None:
    blobs = FilesystemBlobs(tmp_path)
    chunks, content_type = form_chunks(wheel_bytes("pkg", "1.0", padding=100_000))
    body, worker, transport = make_body(blobs, content_type)
    body.write(b"".join(chunks[:8]))  # one batch queued
    body.write(b"garbage" * 3000)  # over the high-water mark: reading pauses
    assert transport.paused
    worker.jobs[0] = (worker.jobs[0][0], _raise_no_space, ())
    worker.step()
    assert not transport.paused  # the client may finish sending; it is dropped
    for chunk in chunks[8:]:
        body.write(chunk)
    assert worker.jobs == []
    body.settled()
    with pytest.raises(OSError, match="No space"):
        body.finish()


def _raise_no_space() -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.usefixtures("small_batches")
def test_a_body_abandoned_mid_batch_is_removed_after_the_batch(tmp_path: Path) -> None:
    blobs = FilesystemBlobs(tmp_path)
    chunks, content_type = form_chunks(wheel_bytes("pkg", "1.0", padding=100_000))
    body, worker, _ = make_body(blobs, content_type)
    rest = iter(chunks)
    while not worker.jobs:
        body.write(next(rest))
    worker.step()  # the first batch: the temp file exists now
    while not worker.jobs:
        body.write(next(rest))
    body.close()  # the client went away while a batch was queued
    worker.drain()  # the batch, then the clean-up after it
    assert temp_files(blobs) == []
    with pytest.raises(FormError, match="abandoned"):
        body.finish()


class FillsUp(FilesystemBlobs):
    """A disk that fills up after 50,000 bytes of a temp file."""

    def new_temp(self) -> IO[bytes]:
        stream = super().new_temp()
        write = stream.write

        def limited(data: Any) -> int:
            if stream.tell() + len(data) > 50_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(data)

        stream.write = limited  # type: ignore[method-assign]
        return stream


@pytest.mark.usefixtures("small_batches")
def test_disk_full_while_streaming_is_507_and_stores_nothing(tmp_path: Path) -> None:
    blobs = FillsUp(tmp_path / "data")
    client = new_client(tmp_path, blobs=blobs)
    registry = client.harness.registry
    registry.create_project("a/b")
    auth = ("__token__", registry.create_token("root", "api")[1])
    reply = client.upload_wheel(1, "pkg", "1.0", auth, padding=300_000)
    assert reply.code == 507
    assert blobs.keys() == [] and temp_files(blobs) == []
    assert client.upload_wheel(1, "pkg", "1.1", auth).code == 201


@pytest.mark.usefixtures("small_batches")
def test_streamed_upload_through_the_site_is_served_byte_for_byte(tmp_path: Path) -> None:
    client = new_client(tmp_path)
    registry = client.harness.registry
    registry.create_project("a/b")
    auth = ("__token__", registry.create_token("root", "api")[1])
    content = wheel_bytes("pkg", "1.0", padding=300_000)
    assert client.upload(1, wheel_filename("pkg", "1.0"), content, "pkg", "1.0", auth).code == 201
    sha = hashlib.sha256(content).hexdigest()
    reply = client.get(f"/api/v4/projects/1/packages/pypi/files/{sha}/"
                       f"{wheel_filename('pkg', '1.0')}", auth=auth)
    assert reply.code == 200 and reply.body == content
    assert temp_files(client.harness.blobs) == []  # type: ignore[arg-type]
