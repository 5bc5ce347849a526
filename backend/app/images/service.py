"""Image rules: ingest, store, describe, serve and delete.

Each change is a unit of work handed to `Database.write`, which commits it. An object is
written before the commit that refers to it; a delete removes objects only after the
commit that drops their rows; caches and thumbnail jobs hear of a change after it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from app import tracing
from app.auth import repository as accounts
from app.auth.errors import Unauthorized
from app.auth.principal import Principal
from app.config import Settings
from app.cpu import CpuPool, WorkerCrashed
from app.db import Database, RunAsync
from app.errors import AppError, Forbidden, InvalidRequest, ServiceUnavailable, ValidationFailed
from app.images import repository, tokens
from app.images.backpressure import UploadGate, metered
from app.images.cache import CachedImage, CachedThumbnail, CacheResult, MetadataCache
from app.images.errors import (
    DeleteTokenRequired,
    FileTooLarge,
    IdempotencyKeyReused,
    ImageNotFound,
    InvalidDeleteToken,
    InvalidFileFormat,
    QuotaExceeded,
    ThumbnailFailed,
    ThumbnailNotReady,
)
from app.images.filenames import safe_filename
from app.images.ingest import MULTIPART_OVERHEAD, MultipartIngest, ReceivedFile
from app.images.processing import Limits, process_upload
from app.images.schemas import (
    BatchResult,
    ImageList,
    ImageRead,
    ImageUploaded,
    Thumbnails,
    ThumbnailSize,
)
from app.images.serving import ObjectCache, ServedObject
from app.images.thumbnails import CONTENT_TYPE as THUMBNAIL_CONTENT_TYPE
from app.images.thumbnails import THUMBNAIL_SIZES
from app.jobs.queue import JobQueue
from app.metrics import CACHE_REQUESTS, UPLOAD_BYTES, UPLOADS
from app.models import Image, Thumbnail, ThumbnailStatus
from app.models.base import utcnow
from app.models.blob import object_key
from app.models.thumbnail import thumbnail_key
from app.replicas import Reads
from app.schemas import ErrorBody
from app.storage import Storage

log = logging.getLogger(__name__)

UPLOADS_ACCEPTED = UPLOADS.labels(result="accepted")
CACHE_RESULTS = {
    result: CACHE_REQUESTS.labels(result=result.lower()) for result in ("HIT", "MISS", "BYPASS")
}
MAX_IDEMPOTENCY_KEY = 255
# Named in idempotency fingerprints, so that a route taking keys later can never replay
# this one's answers (today the upload is the only route that takes a key).
UPLOAD_ROUTE = "POST /api/v1/images/upload"
# Statuses of a body that could not be read as an upload; with a used key, a mismatch.
UNREADABLE_REQUEST = frozenset({400, 413, 415, 422})
MAX_REMEMBERED_BODIES = 10_000
# How long a client should wait before asking for a pending thumbnail again.
THUMBNAIL_RETRY_AFTER = 2


@dataclass(frozen=True, slots=True)
class _IdempotencyKey:
    key_hash: str  # of the caller's scope and the raw key
    fingerprint: str  # of the request: see _fingerprint


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
    # The client address (as app.net resolves it): at most MAX_UPLOADS_PER_CLIENT at once.
    client: str = ""


class ImageService:
    """Upload, read and delete images over one database and one storage backend."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        reads: Reads,
        storage: Storage,
        cache: MetadataCache,
        object_cache: ObjectCache,
        cpu: CpuPool,
        queue: JobQueue,
    ) -> None:
        self.settings = settings
        self.database = database  # writes, and reads that need the newest state
        self.reads = reads  # metadata and listings: a replica when one is fresh enough
        self.storage = storage
        self.cache = cache
        self.object_cache = object_cache
        # Validation decodes images in at most one process per core: bounded CPU and memory.
        self.cpu = cpu
        self.queue = queue  # thumbnail jobs, dispatched after each upload commits
        self.gate = UploadGate(
            settings.max_concurrent_uploads,
            settings.max_ingest_bytes,
            settings.max_uploads_per_client,
        )
        self._bodies: OrderedDict[tuple[CachedImage, str], bytes] = OrderedDict()
        self._limits = Limits.from_settings(settings)

    # ---- upload -------------------------------------------------------------------------

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
        await self._require_room(caller.user_id, 1)

    async def _require_room(self, user_id: uuid.UUID, size: int) -> None:
        async with self.database.reader() as session:
            used, quota = await accounts.storage_usage(
                session, user_id, self.settings.default_quota_bytes
            )
        if used + size > quota:
            raise QuotaExceeded(used, quota)

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
        key_hash = self._idempotency_hash(request)  # a bad key is refused before the body
        try:
            files = await self._receive(request, field="file", max_files=1, fail_fast=True)
        except AppError as exc:
            if key_hash is not None and exc.status_code in UNREADABLE_REQUEST:
                # A body we cannot read is not the request the key answered, if it did.
                await self._refuse_if_used(key_hash, exc)
            raise
        try:
            # Only once the body is read can a replay tell whether it is the same request.
            key = None
            if key_hash is not None:
                key = _IdempotencyKey(key_hash, _fingerprint(UPLOAD_ROUTE, request, files))
                replay = await self._replay(key, request)
                if replay is not None:
                    return replay
            if not files:
                raise _missing_field("file")
            try:
                return await self._store(files[0], request, key)
            except IntegrityError:
                if key is None:
                    raise
                # A concurrent request with the same key won the race: answer as it did,
                # if it was the same request (a different one gets 422, as it would later).
                replay = await self._replay(key, request)
                if replay is None:
                    raise
                return replay
        finally:
            for received in files:
                received.discard()

    async def _upload_batch(self, request: UploadRequest) -> list[BatchResult]:
        files = await self._receive(
            request, field="files", max_files=self.settings.max_batch_files, fail_fast=False
        )
        if not files:
            raise _missing_field("files")
        results = []
        try:
            for index, received in enumerate(files):
                results.append(await self._batch_item(received, request, extra=index > 0))
        finally:
            for received in files:
                received.discard()
        return results

    async def _batch_item(
        self, received: ReceivedFile, request: UploadRequest, *, extra: bool
    ) -> BatchResult:
        try:
            if extra and request.charge_extra_file is not None:
                await request.charge_extra_file()
            if received.refused is not None:
                raise received.refused
            if received.too_large:
                raise FileTooLarge(self.settings.max_upload_bytes)
            image = await self._store(received, request, None)
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
    ) -> list[ReceivedFile]:
        ingest = MultipartIngest(
            content_type=request.content_type,
            field_name=field,
            max_files=max_files,
            max_file_bytes=self.settings.max_upload_bytes,
            tmp_dir=self.settings.tmp_dir,
            fail_fast=fail_fast,
        )
        return await ingest.consume(request.body, self._max_body(max_files))

    async def _store(
        self, received: ReceivedFile, request: UploadRequest, remember: _IdempotencyKey | None
    ) -> ImageUploaded:
        if received.size == 0:
            raise InvalidRequest("The file part is empty")
        try:
            processed = await self.cpu.run(
                process_upload, received.path, received.sha256, self._limits
            )
        except WorkerCrashed as exc:
            raise InvalidFileFormat("The file could not be decoded safely") from exc
        owner_id = request.caller.user_id
        token, token_digest = tokens.new_delete_token() if owner_id is None else (None, None)
        now = utcnow()
        image = Image(
            id=uuid.uuid4(),
            blob_sha256=processed.sha256,
            filename=safe_filename(received.filename, processed.info.format),
            content_type=processed.info.content_type,
            file_size=processed.size,
            width=processed.info.width,
            height=processed.info.height,
            frames=processed.info.frames,
            owner_id=owner_id,
            delete_token_hash=token_digest,
            thumbnail_status=ThumbnailStatus.PENDING,
            thumbnail_attempts=0,
            created_at=now,
            thumbnail_updated_at=now,
        )
        response = self._uploaded(image, request.base_url, token)
        key = object_key(processed.sha256)
        if owner_id is not None:  # refused before the object is stored
            await self._require_room(owner_id, processed.size)
        # The heavy write happens before the lock (SQLite has one writer for everything);
        # under the lock we only check that the object is still there.
        if await self.storage.stat(key) is None:
            await self.storage.put_file(key, processed.path, processed.info.content_type)
        replay_body = self._for_replay(response, request) if remember is not None else None

        def commit(connection: Connection, run_async: RunAsync) -> None:
            claimed_new = repository.claim_blob(
                connection, processed.sha256, processed.size, processed.info.content_type
            )
            try:
                if run_async(self.storage.stat, key) is None:
                    # The last image with these bytes was deleted between our write and our
                    # claim, taking the object with it. Nothing refers to it: retry is safe.
                    raise ServiceUnavailable("The upload raced a delete; retry it", retry_after=1)
                if owner_id is not None:
                    self._charge(connection, owner_id, processed.size)
                repository.insert_image(connection, image)
                if remember is not None and replay_body is not None:
                    repository.save_idempotent_response(
                        connection,
                        remember.key_hash,
                        remember.fingerprint,
                        replay_body,
                        self._idempotency_cutoff(),
                    )
            except BaseException:
                # Still under the blob lock: a new blob's object is referenced by no one.
                if claimed_new:
                    run_async(self.storage.delete, key)
                raise

        await self.database.write(commit)
        if owner_id is not None:
            await self.reads.wrote(user_id=owner_id)  # the owner's listing shows it at once
        log.info("image uploaded", extra={"image_id": str(image.id), "bytes": image.file_size})
        # Only now that the row is committed: a job must never find it missing. A lost
        # dispatch leaves the row pending for the sweeper.
        await self.queue.dispatch(image.id, tracing.current_carrier())
        UPLOADS_ACCEPTED.inc()
        UPLOAD_BYTES.inc(image.file_size)
        return response

    def _charge(self, connection: Connection, owner_id: uuid.UUID, size: int) -> None:
        """Count the bytes against the owner's quota in the upload's transaction."""
        default = self.settings.default_quota_bytes
        if not accounts.charge_storage(connection, owner_id, size, default):
            raise QuotaExceeded(*accounts.usage(connection, owner_id, default))

    # ---- idempotency --------------------------------------------------------------------

    def _idempotency_hash(self, request: UploadRequest) -> str | None:
        key = request.idempotency_key
        if key is None:
            return None
        if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
            raise ValidationFailed(
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
                details={"errors": [{"loc": ["header", "Idempotency-Key"], "msg": "invalid"}]},
            )
        return hashlib.sha256(f"{request.caller.scope}\0{key}".encode()).hexdigest()

    def _idempotency_cutoff(self) -> datetime:
        return utcnow() - timedelta(seconds=self.settings.idempotency_ttl_seconds)

    async def _remembered(self, key_hash: str) -> tuple[str, str | None] | None:
        """The live record under the key: its response body and request fingerprint."""
        async with self.database.reader() as session:
            stored = await repository.get_idempotent_response(
                session, key_hash, self._idempotency_cutoff()
            )
        return None if stored is None else (stored[0], stored[1])

    async def _refuse_if_used(self, key_hash: str, error: AppError) -> None:
        if await self._remembered(key_hash) is not None:
            raise IdempotencyKeyReused(headers=error.headers) from error

    async def _replay(self, key: _IdempotencyKey, request: UploadRequest) -> ImageUploaded | None:
        """The remembered answer to this very request; None when the key is unused.

        The same key with a different request (another file, name, route or none at
        all) is refused: replaying would hand out another upload's image and token."""
        stored = await self._remembered(key.key_hash)
        if stored is None:
            return None
        stored_body, fingerprint = stored
        # Records from before fingerprints were kept (null) match no request.
        if fingerprint is None or not hmac.compare_digest(fingerprint, key.fingerprint):
            raise IdempotencyKeyReused()
        body = json.loads(stored_body)
        masked = body.pop("masked_delete_token", None)
        response = ImageUploaded.model_validate(body)
        if masked is not None:
            secret = f"{request.caller.scope}\0{request.idempotency_key}"
            token = tokens.unmask(masked, secret)
            response.delete_token = token
            response.delete_url = _delete_url(response.url, token)
        return response

    def _for_replay(self, response: ImageUploaded, request: UploadRequest) -> str:
        body = response.model_dump(mode="json", exclude={"delete_token", "delete_url"})
        if response.delete_token is not None:
            secret = f"{request.caller.scope}\0{request.idempotency_key}"
            body["masked_delete_token"] = tokens.mask(response.delete_token, secret)
        return json.dumps(body)

    # ---- read ---------------------------------------------------------------------------

    async def get(self, image_id: uuid.UUID) -> tuple[CachedImage, CacheResult]:
        """The image's public metadata, through the cache, and whether the cache had it."""
        image, result = await self.cache.get_or_load(image_id, self._load)
        CACHE_RESULTS[result].inc()
        if image is None:
            raise ImageNotFound()
        return image, result

    async def _load(self, image_id: uuid.UUID) -> CachedImage | None:
        # A replica that lacks the row may only be behind: the primary confirms a miss.
        found = await self.reads.read(
            lambda session: repository.get_image(session, image_id),
            image_id=image_id,
            confirm_missing=True,
        )
        return None if found is None else _cached(*found)

    async def list_images(
        self, caller: Principal, limit: int, cursor: str | None, base_url: str
    ) -> ImageList:
        """A page of the caller's images, newest first, and the cursor of the next."""
        if caller.user_id is None:
            raise Unauthorized()
        before = _decode_cursor(cursor) if cursor else None
        user_id = caller.user_id
        rows = await self.reads.read(
            lambda session: repository.list_images(session, user_id, before, limit + 1),
            user_id=user_id,
        )
        page = rows[:limit]
        items = [self.read(_cached(image, thumbs), base_url) for image, thumbs in page]
        last = page[-1][0] if len(rows) > limit else None
        return ImageList(items=items, next_cursor=_encode_cursor(last) if last else None)

    async def is_owner(self, image_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        async with self.database.reader() as session:
            return await repository.is_owner(session, image_id, user_id)

    async def served_object(self, image_id: uuid.UUID) -> ServedObject:
        image, _ = await self.get(image_id)
        return ServedObject(
            key=object_key(image.sha256),
            sha256=image.sha256,
            size=image.file_size,
            content_type=image.content_type,
            filename=image.filename,
            modified_at=image.created_at,
        )

    async def served_thumbnail(self, image_id: uuid.UUID, size: ThumbnailSize) -> ServedObject:
        image, _ = await self.get(image_id)
        if image.thumbnail_status == ThumbnailStatus.FAILED:
            raise ThumbnailFailed()
        thumb = next((t for t in image.thumbnails if t.size == size), None)
        if image.thumbnail_status != ThumbnailStatus.READY or thumb is None:
            raise ThumbnailNotReady(retry_after=THUMBNAIL_RETRY_AFTER)
        stem = image.filename.rsplit(".", 1)[0] or "image"
        return ServedObject(
            key=thumbnail_key(image.sha256, size),
            sha256=thumb.sha256,
            size=thumb.file_size,
            content_type=THUMBNAIL_CONTENT_TYPE,
            filename=f"{stem}-{size}.webp",
            modified_at=image.created_at,
        )

    # ---- delete -------------------------------------------------------------------------

    async def delete(
        self, image_id: uuid.UUID, caller: Principal, delete_token: str | None
    ) -> None:
        """Remove the row and, when no other image shares it, the objects.
        Owned images go only by their owner; anonymous ones by their delete token.

        The rows go first, in one transaction; the objects only once it has committed, so
        a commit that fails leaves the image whole (row and file). A crash in between
        leaves objects without rows, which `chitram reconcile` removes."""
        requester = caller.user_id

        def remove(connection: Connection, _run_async: RunAsync) -> str | None:
            # The blob before the image: thumbnail jobs lock in that order, and the other
            # order deadlocked under load. An image never changes blobs.
            sha256 = repository.blob_of(connection, image_id)
            if sha256 is None or not repository.lock_blob(connection, sha256):
                raise ImageNotFound()
            row = repository.lock_image(connection, image_id)
            if row is None:
                raise ImageNotFound()
            _, token_digest, owner_id = row
            if owner_id is not None and owner_id != requester:
                raise Forbidden("Only the image's owner may delete it")
            if owner_id is None:
                if not delete_token:
                    raise DeleteTokenRequired()
                if token_digest is None or not tokens.matches(delete_token, token_digest):
                    raise InvalidDeleteToken()
            deleted = repository.delete_image(connection, image_id, requester)
            if deleted is None:
                raise Forbidden("Only the image's owner may delete it")
            if deleted.owner_id is not None:
                accounts.refund_storage(connection, deleted.owner_id, deleted.file_size)
            if repository.count_blob_references(connection, sha256):
                return None
            repository.delete_blob(connection, sha256)
            return sha256  # its objects go once this has committed

        unreferenced = await self.database.write(remove)
        # The marker before the invalidation: see app.replicas.
        await self.reads.wrote(image_id=image_id, user_id=requester)
        await self.cache.invalidate(image_id)
        if unreferenced is not None:
            await self._remove_objects(unreferenced)
        log.info("image deleted", extra={"image_id": str(image_id)})

    async def _remove_objects(self, sha256: str) -> None:
        """Remove the objects of a blob whose rows this delete has just committed away."""
        keys = [object_key(sha256), *(thumbnail_key(sha256, s) for s in THUMBNAIL_SIZES)]
        try:
            await self.remove_unclaimed_objects(sha256, keys)
        except ServiceUnavailable:
            # The image is deleted all the same; reconcile removes what is left.
            log.warning("objects of a deleted image left for reconcile", extra={"sha256": sha256})

    async def remove_unclaimed_objects(self, sha256: str, keys: list[str]) -> bool:
        """Remove `keys` of a blob that has no row, unless an upload claims the same
        bytes again meanwhile: its claim has a row, which keeps them. False when kept.

        Under the blob lock: a placeholder row holds the key while the objects go, so a
        concurrent upload's claim waits for us, then finds the object missing and asks
        for a retry (it re-checks under the lock) instead of answering 201 without one."""

        def remove_unless_claimed(connection: Connection, run_async: RunAsync) -> bool:
            if not repository.claim_blob(connection, sha256, 0, ""):
                return False  # claimed again since the row went: the objects are in use
            for key in keys:
                run_async(self.storage.delete, key)
            repository.delete_blob(connection, sha256)  # the placeholder: never committed
            return True

        removed = await self.database.write(remove_unless_claimed)
        if removed:
            for key in keys:
                self.object_cache.discard(key)  # only memory: a deleted image is refused first
        return removed

    # ---- presentation -------------------------------------------------------------------

    def read(self, image: CachedImage, base_url: str) -> ImageRead:
        return ImageRead(**self._fields(image, base_url))

    def read_json(self, image: CachedImage, base_url: str) -> bytes:
        """`read(...)` as JSON, remembered per value: cached reads skip the schema.

        Keyed by the whole (frozen) value, so a changed image is a new key and can never
        be answered with an old body; old bodies simply age out of the LRU."""
        key = (image, base_url)
        body = self._bodies.get(key)
        if body is None:
            body = self.read(image, base_url).model_dump_json().encode()
            self._bodies[key] = body
            if len(self._bodies) > MAX_REMEMBERED_BODIES:
                self._bodies.popitem(last=False)
        else:
            self._bodies.move_to_end(key)
        return body

    def _uploaded(self, image: Image, base_url: str, token: str | None) -> ImageUploaded:
        """The upload's answer: owned images carry no delete token."""
        fields = self._fields(_cached(image), base_url)
        if token is None:
            return ImageUploaded(**fields)
        delete_url = _delete_url(str(fields["url"]), token)
        return ImageUploaded(**fields, delete_token=token, delete_url=delete_url)

    def _fields(self, image: CachedImage, base_url: str) -> dict[str, object]:
        base = self.settings.public_base_url or base_url.rstrip("/")
        url = f"{base}/api/v1/images/{image.id}"
        ready = image.thumbnail_status == ThumbnailStatus.READY
        thumbnails = Thumbnails(
            **{size: f"{url}/thumbnail?size={size}" if ready else None for size in THUMBNAIL_SIZES}
        )
        return {
            "id": image.id,
            "filename": image.filename,
            "content_type": image.content_type,
            "file_size": image.file_size,
            "width": image.width,
            "height": image.height,
            "frames": image.frames,
            "checksum": f"sha256:{image.sha256}",
            "created_at": image.created_at,
            "url": f"{url}/file",
            "thumbnail_status": image.thumbnail_status,
            "thumbnail_ready": ready,
            "thumbnail_url": thumbnails.medium,
            "thumbnails": thumbnails,
        }


@contextmanager
def _counted_refusal() -> Iterator[None]:
    """Count an upload (or a whole batch) that was refused as a whole, by its code."""
    try:
        yield
    except AppError as exc:
        UPLOADS.labels(result=exc.code.lower()).inc()
        raise


def _encode_cursor(image: Image) -> str:
    """Opaque to clients: the position of the last image of a page."""
    raw = f"{image.created_at.isoformat()}|{image.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, image_id = raw.split("|")
        position = datetime.fromisoformat(created), uuid.UUID(hex=image_id)
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError included
        raise InvalidRequest("The cursor is not valid") from exc
    if position[0].tzinfo is None:
        raise InvalidRequest("The cursor is not valid")
    return position


def _delete_url(file_url: str, token: str) -> str:
    """Where to send the DELETE: the image's URL, carrying the token."""
    return f"{file_url.removesuffix('/file')}?delete_token={token}"


def _cached(image: Image, thumbnails: list[Thumbnail] | None = None) -> CachedImage:
    return CachedImage(
        id=image.id,
        filename=image.filename,
        content_type=image.content_type,
        file_size=image.file_size,
        width=image.width,
        height=image.height,
        frames=image.frames,
        sha256=image.blob_sha256,
        created_at=image.created_at,
        thumbnail_status=image.thumbnail_status,
        thumbnails=tuple(
            CachedThumbnail(size=t.size, sha256=t.sha256, file_size=t.file_size)
            for t in thumbnails or ()
        ),
    )


def _fingerprint(route: str, request: UploadRequest, files: list[ReceivedFile]) -> str:
    """What makes two uploads the same request: route, caller and, for each file part,
    its content hash, size and name (other form fields are ignored by the upload)."""
    parts = [[f.sha256, f.size, f.too_large, f.filename] for f in files]
    canonical = json.dumps([route, request.caller.scope, parts], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _missing_field(name: str) -> ValidationFailed:
    """The same 422 FastAPI gives for a missing form field."""
    problem = {"loc": ["body", name], "msg": "Field required", "type": "missing"}
    return ValidationFailed(details={"errors": [problem]})
