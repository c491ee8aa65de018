"""An upload, from the request body to a committed row.

    worker thread: parse the form, or what is left of one parsed as it arrived (file
                   part -> temp blob, hashed in the same pass),
                   validate name/version/filename/digests, extract core metadata, fsync,
                   rename the blobs into place (held against concurrent deletes)
    db thread:     one transaction for the rows (shared by the uploads that finished
                   while the previous commit ran: GroupCommit)
    reactor:       drop the project's cached pages; the file is listed from the next read

Anything refused leaves nothing behind: temp files are removed before the error returns.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, Protocol, cast

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from pypid.blobs.guard import BlobGuard
from pypid.caches import Caches
from pypid.dists import form as forms
from pypid.dists import metadata as metadatas
from pypid.domain.access import Principal
from pypid.domain.names import BadName, DistributionFile, check_upload_filename
from pypid.interfaces import IBlobStore
from pypid.queue import BoundedQueue
from pypid.store.registry import (
    PYPI_METADATA_FIELDS,
    Conflict,
    FileRecord,
    NewFile,
    NotFound,
    Registry,
    Row,
    WriteRefused,
)

log = Logger()
DIGEST_FIELDS = (("md5_digest", "md5"), ("sha256_digest", "sha256"),
                 ("blake2_256_digest", "blake2_256"))


class UploadRefused(ValueError):
    """The upload is unacceptable; status and a one-line reason for the client."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CheckedUpload:
    dist: DistributionFile
    display_name: str
    version: str
    record: FileRecord
    temp_path: str


class StreamedForm(Protocol):
    """A body parsed while it arrived (pypid.web.formbody)."""

    def settled(self) -> Deferred[None]:
        """Fires once no parsing is running for it on a worker."""

    def finish(self) -> forms.UploadForm:
        """Worker thread, after settled(): the rest parsed, the form."""


def check_upload(blobs: IBlobStore, parse: Callable[[], forms.UploadForm]) -> CheckedUpload:
    """Parse (parse() runs the form parser) and validate an upload; temp files synced.
    Cleans up on refusal."""
    try:
        form = parse()
    except forms.FormError as error:
        raise UploadRefused(str(error)) from None
    uploaded = form.file
    if uploaded is None:
        raise UploadRefused("the upload form has no 'content' file")
    try:
        action = form.first(":action")
        if action is not None and action != "file_upload":
            raise UploadRefused(f"unsupported :action {action!r}; only file_upload is supported")
        name, version = form.first("name"), form.first("version")
        if not name or not version:
            raise UploadRefused("the upload form needs 'name' and 'version'")
        try:
            dist = check_upload_filename(uploaded.filename, name, version)
        except BadName as error:
            raise UploadRefused(str(error)) from None
        if uploaded.size == 0:
            raise UploadRefused("the uploaded file is empty")
        for field, attribute in DIGEST_FIELDS:
            sent = form.first(field)
            if sent and not hmac.compare_digest(
                sent.strip().lower().encode("ascii", "replace"),
                getattr(uploaded, attribute).encode("ascii"),
            ):
                raise UploadRefused(
                    f"the {field} sent does not match the file's content (upload corrupted?)"
                )
        try:
            core = metadatas.extract(uploaded.temp_path, uploaded.filename, uploaded.size)
            if core is not None:
                metadatas.check_matches(core, name, dist.version)
        except metadatas.MetadataError as error:
            raise UploadRefused(f"invalid distribution {uploaded.filename}: {error}") from None
        requires_python = form.first("requires_python") or (
            core.requires_python if core is not None else None
        )
        core_text = core.raw if core is not None else None
        if core is not None and not metadatas.servable(core, uploaded.filename):
            core = None  # checked against the filename, but not advertised (PEP 658/643)
        blobs.sync_temp(uploaded.temp_path)
    except BaseException:
        blobs.discard(uploaded.temp_path)
        raise
    record = FileRecord(
        filename=uploaded.filename, sha256=uploaded.sha256, md5=uploaded.md5,
        blake2_256=uploaded.blake2_256, size=uploaded.size,
        requires_python=requires_python or None,
        metadata_sha256=hashlib.sha256(core.raw).hexdigest() if core is not None else None,
        metadata=core.raw if core is not None else None,
        package_metadata=package_metadata(form, core_text, requires_python),
    )
    return CheckedUpload(dist, name, version, record, uploaded.temp_path)


DESCRIPTION_LIMIT = 4000  # GitLab keeps this much of a package's description
FIELD_LIMIT = 255


def package_metadata(form: forms.UploadForm, core: bytes | None,
                     requires_python: str | None) -> tuple[str | None, ...]:
    """GitLab's pypi_metadata fields: the upload form's, else the file's core metadata's
    (its headers; the description may be its body)."""
    headers: Any = None
    if core is not None:
        import email.parser
        import email.policy

        headers = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(core)
    values: list[str | None] = []
    for field in PYPI_METADATA_FIELDS:
        value = form.first(field) if field != "required_python" else requires_python
        if not value and headers is not None:
            header = {"required_python": "Requires-Python"}.get(
                field, field.replace("_", "-").title())
            value = headers.get(header)
            if field == "description" and not value:
                value = headers.get_payload() if isinstance(headers.get_payload(), str) \
                    else None
        if isinstance(value, str):
            value = value.strip()[:DESCRIPTION_LIMIT if field == "description" else FIELD_LIMIT]
        values.append(value or None)
    return tuple(values)


def store_blobs(blobs: IBlobStore, guard: BlobGuard, checked: CheckedUpload) -> None:
    """Worker thread: hold the key, then rename the synced temp file into place."""
    keys = checked.record.blob_keys()
    guard.hold(keys)
    try:
        blobs.commit(checked.temp_path, checked.record.sha256)
    except BaseException:
        guard.release(keys)
        blobs.discard(checked.temp_path)
        raise


def check_and_store(
    blobs: IBlobStore, guard: BlobGuard, parse: Callable[[], forms.UploadForm]
) -> CheckedUpload:
    """Worker thread: everything an upload needs before its row can be written."""
    checked = check_upload(blobs, parse)
    store_blobs(blobs, guard, checked)
    return checked


Recorded = tuple[NewFile, Callable[[Row], None] | None]


def record_uploads(registry: Registry, uploads: list[Recorded]) -> list[Row | Exception]:
    """Database thread: the rows of several uploads in one transaction; then, for each one
    committed, on_commit (the audit record), whose failure is logged and undoes nothing."""
    results = registry.add_files([new_file for new_file, _ in uploads])
    for (_, on_commit), result in zip(uploads, results, strict=True):
        if on_commit is not None and not isinstance(result, Exception):
            try:
                on_commit(result)
            except Exception:
                log.failure("cannot record the upload of {filename} in the audit log",
                            filename=result["filename"])
    return results


class GroupCommit:
    """Writes uploads' rows in as few transactions as the database allows.

    Each commit costs an fsync (synchronous=FULL). While one runs, the uploads that finish
    meanwhile wait and then share the next transaction, so concurrent uploads pay one fsync
    between them; a lone upload goes at once. No timer: nothing waits for company.
    """

    def __init__(self, run_db: Callable[..., Deferred[Any]]) -> None:
        self._run_db = run_db
        self._waiting: list[tuple[Recorded, Deferred[Row]]] = []
        self._busy = False

    def record(self, new_file: NewFile, on_commit: Callable[[Row], None] | None) -> Deferred[Row]:
        """Fires with the file row once committed, or fails with what refused it."""
        done: Deferred[Row] = Deferred()
        self._waiting.append(((new_file, on_commit), done))
        if not self._busy:
            self._commit_waiting()
        return done

    def _commit_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        self._busy = True
        running = self._run_db(record_uploads, [recorded for recorded, _ in batch])

        def answer(results: list[Row | Exception]) -> None:
            for (_, done), result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    done.errback(Failure(result))
                else:
                    done.callback(result)

        def fail_all(failure: Failure) -> None:
            for _, done in batch:
                done.errback(failure)

        running.addCallbacks(answer, fail_all)
        running.addBoth(self._next)

    def _next(self, _: object) -> None:
        self._busy = False
        if self._waiting:
            self._commit_waiting()


def remove_unreferenced(
    registry: Registry, blobs: IBlobStore, guard: BlobGuard, keys: list[str]
) -> None:
    """Database thread: delete the blobs no row references and no upload holds."""
    for key in registry.unreferenced(keys):
        guard.delete_unless_held(blobs, key, registry.unused)


class Publisher:
    def __init__(
        self, blobs: IBlobStore, queue: BoundedQueue,
        run_db: Callable[..., Deferred[Any]], caches: Caches, guard: BlobGuard | None = None,
    ) -> None:
        self._blobs = blobs
        self._queue = queue
        self._run_db = run_db
        self._caches = caches
        self._commits = GroupCommit(run_db)
        self.guard = guard or BlobGuard()

    async def publish(
        self, project: Row, principal: Principal, body: IO[bytes] | StreamedForm,
        content_type: str | None, on_commit: Callable[[Row], None] | None = None,
    ) -> Row:
        parse: Callable[[], forms.UploadForm]
        # Duck-typed: a runtime-checked Protocol cost more per upload than a getattr.
        settled = getattr(body, "settled", None)
        if settled is not None:
            await settled()
            parse = body.finish  # type: ignore[union-attr]
        else:
            parse = partial(forms.parse_upload_form, cast("IO[bytes]", body), content_type,
                            self._blobs.new_temp)
        checked: CheckedUpload = await self._queue.submit(
            check_and_store, self._blobs, self.guard, parse)
        keys = checked.record.blob_keys()
        try:
            row: Row = await self._commits.record(
                (project["id"], checked.dist, checked.display_name, checked.version,
                 checked.record, principal.name, principal),
                on_commit)
        except (Conflict, WriteRefused, NotFound) as error:
            # Refused by the transaction: nothing references the blob it brought.
            self.guard.release(keys)
            keys = []
            await self._run_db(
                remove_unreferenced, self._blobs, self.guard, checked.record.blob_keys()
            )
            if isinstance(error, Conflict):
                raise UploadRefused(str(error)) from None
            raise
        finally:
            self.guard.release(keys)
            self._caches.project_changed(project["id"])
        return row
