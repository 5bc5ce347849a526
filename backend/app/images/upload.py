"""Uploads: admit the request, receive its file parts, store each one (ADR 0016)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError

from app.auth.errors import Unauthorized
from app.auth.principal import Principal
from app.config import Settings
from app.errors import AppError, ValidationFailed
from app.images.backpressure import UploadGate, metered
from app.images.errors import FileTooLarge
from app.images.filenames import safe_filename
from app.images.idempotency import (
    UNREADABLE_REQUEST,
    UPLOAD_ROUTE,
    IdempotencyKey,
    Replays,
    fingerprint,
)
from app.images.ingest import MULTIPART_OVERHEAD, MultipartIngest, ReceivedFile, discard_all
from app.images.options import FORM_FIELDS, UploadOptions, parse_upload_options
from app.images.presenter import ImagePresenter
from app.images.schemas import BatchResult, ImageUploaded
from app.images.storing import ImageWriter
from app.infra.cpu import CpuPool
from app.infra.db import Database
from app.infra.metrics import UPLOADS
from app.infra.replicas import Reads
from app.jobs.queue import JobQueue
from app.models.base import utcnow
from app.schemas import ErrorBody
from app.storage import Storage


@dataclass(frozen=True, slots=True)
class UploadRequest:
    body: AsyncIterator[bytes]
    content_type: str
    content_length: int | None
    caller: Principal
    base_url: str
    request_id: str | None = None
    idempotency_key: str | None = None
    # A batch counts one upload per file: this charges each file after the first against
    # the caller's rate limit, raising RateLimited (that file's 429) once it is spent.
    charge_extra_file: Callable[[], Awaitable[None]] | None = None
    # The client address (as app.http.net resolves it): at most MAX_UPLOADS_PER_CLIENT at once.
    client: str = ""
    expires_in: str | None = None  # the `Expires-In` header


class UploadService:
    """Upload images: one (`upload`) or several (`upload_batch`) per request."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        reads: Reads,
        storage: Storage,
        cpu: CpuPool,
        queue: JobQueue,
        presenter: ImagePresenter,
    ) -> None:
        self.settings = settings
        self.replays = Replays(settings, database)  # answers a retry as it was answered
        self.writer = ImageWriter(
            settings, database, reads, storage, cpu, queue, presenter, self.replays
        )
        self.gate = UploadGate(
            settings.max_concurrent_uploads,
            settings.max_ingest_bytes,
            settings.max_uploads_per_client,
        )

    async def upload(self, request: UploadRequest) -> ImageUploaded:
        """Ingest one file part named `file`; the response body of a 201."""
        with _counted_refusal():
            await self._authorise(request.caller)
            with self._admit(request, max_files=1) as admitted:
                return await self._upload(admitted)

    async def upload_batch(self, request: UploadRequest) -> list[BatchResult]:
        """Ingest every `files` part; each gets the result it would have got alone."""
        with _counted_refusal():
            await self._authorise(request.caller)
            with self._admit(request, max_files=self.settings.max_batch_files) as admitted:
                return await self._upload_batch(admitted)

    async def _authorise(self, caller: Principal) -> None:
        """Refuse, before any of the body is read, what could never be stored."""
        if caller.user_id is None:
            if not self.settings.allow_anonymous_uploads:
                raise Unauthorized("Anonymous uploads are disabled: sign in or send an API key")
            return
        await self.writer.require_room(caller.user_id, 1)

    def _max_body(self, max_files: int) -> int:
        return max_files * (self.settings.max_upload_bytes + MULTIPART_OVERHEAD)

    @contextmanager
    def _admit(self, request: UploadRequest, *, max_files: int) -> Iterator[UploadRequest]:
        """A slot of the upload gate, taken before any of the body is read, and the
        request with its body metered: bytes reserved as they arrive, and a minimum
        rate (ADR 0016)."""
        max_body = self._max_body(max_files)
        declared = request.content_length
        if declared is not None and declared > max_body:
            raise FileTooLarge(self.settings.max_upload_bytes)
        with self.gate.admit(request.client, declared) as admission:
            body = metered(
                request.body,
                admission,
                grace_seconds=self.settings.upload_grace_seconds,
                min_bytes_per_second=self.settings.upload_min_bytes_per_second,
            )
            yield replace(request, body=body)

    async def _upload(self, request: UploadRequest) -> ImageUploaded:
        caller = request.caller
        key_hash = self.replays.key_hash(caller, request.idempotency_key)  # before the body
        try:
            files, fields = await self._receive(request, field="file", max_files=1, fail_fast=True)
        except AppError as exc:
            if key_hash is not None and exc.status_code in UNREADABLE_REQUEST:
                await self.replays.refuse_if_used(key_hash, exc)
            raise
        try:
            # Only once the body is read can a replay tell whether it is the same request.
            key = None
            if key_hash is not None:
                secret = f"{caller.scope}\0{request.idempotency_key}"
                key = IdempotencyKey(
                    key_hash, fingerprint(UPLOAD_ROUTE, caller, files, fields), secret
                )
                replay = await self.replays.replay(key)
                if replay is not None:
                    return replay
            if not files:
                raise _missing_field("file")
            options = self._options(request, fields)
            return await self._store_or_replay(files[0], request, key, options)
        finally:
            await discard_all(files)

    def _options(self, request: UploadRequest, fields: dict[str, str]) -> UploadOptions:
        return parse_upload_options(
            fields,
            request.expires_in,
            anonymous=request.caller.user_id is None,
            settings=self.settings,
            now=utcnow(),
        )

    async def _store_or_replay(
        self,
        received: ReceivedFile,
        request: UploadRequest,
        key: IdempotencyKey | None,
        options: UploadOptions,
    ) -> ImageUploaded:
        try:
            return await self.writer.store(received, request.caller, request.base_url, key, options)
        except IntegrityError:
            if key is None:
                raise
            # A concurrent request with the same key won the race: answer as it did,
            # if it was the same request (a different one gets 422, as it would later).
            replay = await self.replays.replay(key)
            if replay is None:
                raise
            return replay

    async def _upload_batch(self, request: UploadRequest) -> list[BatchResult]:
        files, fields = await self._receive(
            request, field="files", max_files=self.settings.max_batch_files, fail_fast=False
        )
        results = []
        try:
            if not files:
                raise _missing_field("files")
            options = self._options(request, fields)
            for index, received in enumerate(files):
                results.append(await self._batch_item(received, request, options, extra=index > 0))
        finally:
            await discard_all(files)
        return results

    async def _batch_item(
        self,
        received: ReceivedFile,
        request: UploadRequest,
        options: UploadOptions,
        *,
        extra: bool,
    ) -> BatchResult:
        try:
            if extra and request.charge_extra_file is not None:
                await request.charge_extra_file()
            if received.refused is not None:
                raise received.refused
            if received.too_large:
                raise FileTooLarge(self.settings.max_upload_bytes)
            image = await self.writer.store(
                received, request.caller, request.base_url, None, options
            )
        except AppError as exc:
            UPLOADS.labels(result=exc.code.lower()).inc()
            error = ErrorBody(
                code=exc.code,
                message=exc.detail_message,
                details=exc.details,
                request_id=request.request_id,
            )
            filename = safe_filename(received.filename, None)
            return BatchResult(filename=filename, status=exc.status_code, error=error)
        return BatchResult(filename=image.filename, status=201, image=image)

    async def _receive(
        self, request: UploadRequest, *, field: str, max_files: int, fail_fast: bool
    ) -> tuple[list[ReceivedFile], dict[str, str]]:
        ingest = MultipartIngest(
            content_type=request.content_type,
            field_name=field,
            max_files=max_files,
            max_file_bytes=self.settings.max_upload_bytes,
            tmp_dir=self.settings.tmp_dir,
            fail_fast=fail_fast,
            form_fields=FORM_FIELDS,
        )
        files = await ingest.consume(request.body, self._max_body(max_files))
        return files, ingest.fields


@contextmanager
def _counted_refusal() -> Iterator[None]:
    """Count an upload (or a whole batch) that was refused as a whole, by its code."""
    try:
        yield
    except AppError as exc:
        UPLOADS.labels(result=exc.code.lower()).inc()
        raise


def _missing_field(name: str) -> ValidationFailed:
    """The same 422 FastAPI gives for a missing form field."""
    problem = {"loc": ["body", name], "msg": "Field required", "type": "missing"}
    return ValidationFailed(details={"errors": [problem]})
