"""Photo details (contract section 11, `GET /images/{id}/exif`): camera EXIF read from the
upload before stripping, the owner's alone, never location; hostile EXIF never fails an
upload. API tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import math
import random
import struct
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from PIL import Image, TiffImagePlugin
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from app.config import Settings
from app.images import repository
from app.images.camera import MAX_TEXT, CameraDetails, camera_details
from app.models import Image as ImageRow
from tests.images import factories
from tests.support import images
from tests.support.accounts import Account
from tests.support.flows import register, upload, upload_ok

pytestmark = pytest.mark.anyio
IMAGES = "/api/v1/images"

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
MAKE, MODEL, ORIENTATION, DATE_TIME = 0x010F, 0x0110, 0x0112, 0x0132
EXPOSURE_TIME, F_NUMBER, ISO, FOCAL_LENGTH = 0x829A, 0x829D, 0x8827, 0x920A
DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL, LENS_MAKE, LENS_MODEL = 0x9003, 0x9011, 0xA433, 0xA434
# Where the test camera was: it must never come back out.
GPS = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0), 6: 35.0, 29: "2024:05:01"}

THE_CAMERA = {
    "camera_make": "Chitram Optics",
    "camera_model": "Pinhole One",
    "lens": "Prime 35mm F2.8",
    "taken_at": "2024-05-01T14:22:33+02:00",
    "exposure_time": 0.004,
    "f_number": 2.8,
    "iso": 400,
    "focal_length": 35.0,
    "orientation": 6,
}
NOTHING = dict.fromkeys(THE_CAMERA)


def camera_exif(*, offset: bool = True, orientation: int | None = 6, gps: bool = True) -> bytes:
    """A camera's EXIF, as Pillow writes it: IFD0, the Exif IFD and, unless told, GPS."""
    exif = Image.Exif()
    exif[MAKE], exif[MODEL] = "Chitram Optics", "Pinhole One"
    exif[DATE_TIME] = "2024:06:30 09:00:00"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    camera = exif.get_ifd(EXIF_IFD)
    camera[EXPOSURE_TIME] = TiffImagePlugin.IFDRational(1, 250)
    camera[F_NUMBER] = TiffImagePlugin.IFDRational(28, 10)
    camera[ISO] = 400
    camera[FOCAL_LENGTH] = TiffImagePlugin.IFDRational(35, 1)
    camera[LENS_MODEL] = "Prime 35mm F2.8"
    camera[DATE_TIME_ORIGINAL] = "2024:05:01 14:22:33"
    if offset:
        camera[OFFSET_TIME_ORIGINAL] = "+02:00"
    if gps:
        exif.get_ifd(GPS_IFD).update(GPS)
    return exif.tobytes()


def photo(fmt: str, exif: bytes | None, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small picture in `fmt` carrying `exif` (none when None)."""
    params: dict[str, Any] = {} if exif is None else {"exif": exif}
    if fmt == "JPEG":
        params["quality"] = 85
    return factories.save(factories.picture(size), fmt, **params)


Entry = tuple[int, int, int, bytes | int]  # tag, type, count, value bytes or a raw offset


def tiff(ifd0: list[Entry], exif_ifd: list[Entry]) -> bytes:
    """Little-endian EXIF built by hand, so that any value can be malformed: an entry's
    value is its bytes, or an int written as its offset (to point anywhere)."""
    ifd0_size = 2 + 12 * (len(ifd0) + 1) + 4
    exif_at = 8 + ifd0_size
    data_at = exif_at + 2 + 12 * len(exif_ifd) + 4
    data = bytearray()

    def table(entries: list[Entry]) -> bytes:
        out = struct.pack("<H", len(entries))
        for tag, kind, count, value in entries:
            if isinstance(value, int):
                out += struct.pack("<HHII", tag, kind, count, value)
            elif len(value) <= 4:
                out += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
            else:
                out += struct.pack("<HHII", tag, kind, count, data_at + len(data))
                data.extend(value + b"\x00" * (len(value) & 1))
        return out + b"\x00\x00\x00\x00"

    first = table([*ifd0, (EXIF_IFD, 4, 1, struct.pack("<I", exif_at))])
    second = table(exif_ifd)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + first + second + bytes(data)


def ascii_(value: bytes) -> tuple[int, int, bytes]:
    return 2, len(value) + 1, value + b"\x00"


def rational(numerator: int, denominator: int) -> tuple[int, int, bytes]:
    return 5, 1, struct.pack("<II", numerator, denominator)


HOSTILE = tiff(
    [
        (MAKE, *ascii_(b"M" * 10_000)),  # 10 KB: capped
        (MODEL, *ascii_(b"\xff\xfe Caf\xe9 \xc3")),  # not UTF-8
        (DATE_TIME, *ascii_(b"2024:13:45 25:61:61")),  # no such moment
    ],
    [
        (LENS_MODEL, *ascii_(b"\x1bLens\x07\tOne\x00hidden after the NUL")),
        (LENS_MAKE, 7, 4, b"Lens"),  # bytes (UNDEFINED) where text belongs
        (EXPOSURE_TIME, *rational(1, 0)),  # a zero denominator
        (F_NUMBER, *rational(0, 0)),  # 0/0
        (FOCAL_LENGTH, 12, 1, struct.pack("<d", math.nan)),  # a NaN double
        (ISO, *ascii_(b"400")),  # text where a number belongs
        (DATE_TIME_ORIGINAL, 2, 20, 0x7FFF_FFF0),  # points far outside the data
        (OFFSET_TIME_ORIGINAL, *ascii_(b"+99:00")),
    ],
)


async def _exif(
    client: httpx.AsyncClient, image_id: str, account: Account | None = None
) -> httpx.Response:
    return await client.get(f"{IMAGES}/{image_id}/exif", headers=account.headers if account else {})


async def _details(client: httpx.AsyncClient, image_id: str, owner: Account) -> dict[str, Any]:
    response = await _exif(client, image_id, owner)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@asynccontextmanager
async def _database(settings: Settings) -> Any:
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


# ---- what the owner reads -----------------------------------------------------------


async def test_the_owner_reads_the_camera_details_of_a_jpeg(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    body = await upload_ok(client, photo("JPEG", camera_exif()), filename="p.jpg", account=owner)
    details = await _details(client, body["id"], owner)
    stored = (await client.get(f"{IMAGES}/{body['id']}", headers=owner.headers)).json()
    # Orientation 6 is a quarter turn: the stored image is displayed 48 wide, 64 high.
    assert (stored["width"], stored["height"]) == (48, 64)
    assert details == {**THE_CAMERA, "width": 48, "height": 64}


async def test_without_an_offset_taken_at_is_the_cameras_local_time(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    exif = camera_exif(offset=False, orientation=None)
    body = await upload_ok(client, photo("JPEG", exif), filename="p.jpg", account=owner)
    details = await _details(client, body["id"], owner)
    assert details["taken_at"] == "2024-05-01T14:22:33"
    assert (details["orientation"], details["width"], details["height"]) == (None, 64, 48)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
async def test_png_exif_and_webp_exif_chunks_are_read(client: httpx.AsyncClient, fmt: str) -> None:
    owner = await register(client)
    body = await upload_ok(client, photo(fmt, camera_exif()), filename="p.img", account=owner)
    assert body["content_type"] == f"image/{fmt.lower()}"
    assert await _details(client, body["id"], owner) == {**THE_CAMERA, "width": 48, "height": 64}


async def test_a_file_without_exif_has_null_details(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    for data, name in [(images.png(40, 30), "s.png"), (photo("JPEG", None), "s.jpg")]:
        body = await upload_ok(client, data, filename=name, account=owner)
        details = await _details(client, body["id"], owner)
        assert details == {**NOTHING, "width": body["width"], "height": body["height"]}


async def test_hostile_exif_never_fails_the_upload(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    for fmt in ("JPEG", "PNG", "WEBP"):
        response = await upload(client, photo(fmt, HOSTILE), filename="h.img", account=owner)
        assert response.status_code == 201, (fmt, response.text)
        details = await _details(client, response.json()["id"], owner)
        assert details == {
            **NOTHING,
            "camera_make": "M" * MAX_TEXT,
            "lens": "Lens One",
            "width": 64,
            "height": 48,
        }, fmt


@pytest.mark.parametrize(
    "exif",
    [
        b"II*\x00\x08\x00\x00\x00\xff\xff",  # 65,535 entries announced, none there
        b"MM\x00*\x7f\xff\xff\xff",  # the first IFD far outside
        b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", EXIF_IFD, 4, 1, 8),  # a loop
        b"Exif\x00\x00garbage",
        b"",
    ],
    ids=["truncated", "outside", "loop", "garbage", "empty"],
)
async def test_broken_exif_structures_give_null_details(
    client: httpx.AsyncClient, exif: bytes
) -> None:
    owner = await register(client)
    body = await upload_ok(client, photo("PNG", exif), filename="b.png", account=owner)
    assert await _details(client, body["id"], owner) == {**NOTHING, "width": 64, "height": 48}


# ---- never location ---------------------------------------------------------------


async def test_location_is_kept_nowhere(client: httpx.AsyncClient, settings: Settings) -> None:
    owner = await register(client)
    body = await upload_ok(client, photo("JPEG", camera_exif()), filename="p.jpg", account=owner)
    async with _database(settings) as db:
        rows = (await db.execute(text("SELECT * FROM image_exif"))).mappings().all()
    assert len(rows) == 1
    row = dict(rows[0])
    # Exactly these columns: no place for a location, not even a JSON blob.
    assert set(row) == {"image_id", *THE_CAMERA}
    assert uuid.UUID(str(row.pop("image_id"))) == uuid.UUID(body["id"])
    assert row == THE_CAMERA
    served = (await client.get(body["url"], headers=owner.headers)).content
    with Image.open(io.BytesIO(served)) as image:
        exif = image.getexif()
        assert GPS_IFD not in exif
        assert exif.get_ifd(GPS_IFD) == {}
        assert dict(exif) == {ORIENTATION: 6}  # the camera details went too
    details = await _details(client, body["id"], owner)
    assert not set(details) & {"gps", "location", "latitude", "longitude", "altitude"}


# ---- who may read them --------------------------------------------------------------


async def test_only_the_owner_reads_the_details(client: httpx.AsyncClient) -> None:
    owner, other = await register(client), await register(client)
    data = photo("JPEG", camera_exif())
    unlisted = await upload_ok(client, data, filename="u.jpg", account=owner)
    private = await upload_ok(
        client, data, filename="p.jpg", account=owner, fields={"visibility": "private"}
    )
    for image in (unlisted, private):
        _error(await _exif(client, image["id"]), 401, "UNAUTHORIZED")
        assert (await _details(client, image["id"], owner))["camera_make"] == "Chitram Optics"
    _error(await _exif(client, unlisted["id"], other), 403, "FORBIDDEN")
    _error(await _exif(client, private["id"], other), 404, "IMAGE_NOT_FOUND")


async def test_an_anonymous_upload_has_no_owner_to_read_its_details(
    client: httpx.AsyncClient,
) -> None:
    body = await upload_ok(client, photo("JPEG", camera_exif()), filename="a.jpg")
    _error(await _exif(client, body["id"]), 401, "UNAUTHORIZED")
    _error(await _exif(client, body["id"], await register(client)), 403, "FORBIDDEN")


async def test_unknown_deleted_and_expired_images_are_404(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await register(client)
    _error(await _exif(client, str(uuid.uuid4()), owner), 404, "IMAGE_NOT_FOUND")
    bad = await client.get(f"{IMAGES}/not-an-id/exif", headers=owner.headers)
    _error(bad, 422, "VALIDATION_ERROR")
    data = photo("JPEG", camera_exif())
    deleted = await upload_ok(client, data, filename="d.jpg", account=owner)
    response = await client.delete(f"{IMAGES}/{deleted['id']}", headers=owner.headers)
    assert response.status_code == 204
    _error(await _exif(client, deleted["id"], owner), 404, "IMAGE_NOT_FOUND")
    expired = await upload_ok(client, data, filename="e.jpg", account=owner)
    async with _database(settings) as db:
        past = datetime(2020, 1, 1, tzinfo=UTC)
        await db.execute(
            update(ImageRow).where(ImageRow.id == uuid.UUID(expired["id"])).values(expires_at=past)
        )
        await db.commit()
        left = (await db.execute(text("SELECT count(*) FROM image_exif"))).scalar_one()
    assert left == 1  # the deleted image's details went with it; the expired one's remain
    _error(await _exif(client, expired["id"], owner), 404, "IMAGE_NOT_FOUND")


# ---- for the tagger: does the image have camera EXIF? -------------------------------


async def test_has_camera_exif(client: httpx.AsyncClient, settings: Settings) -> None:
    owner = await register(client)
    camera = await upload_ok(client, photo("JPEG", camera_exif()), filename="c.jpg", account=owner)
    oriented_only = await upload_ok(
        client, photo("JPEG", factories.orientation_only_exif()), filename="o.jpg", account=owner
    )
    plain = await upload_ok(client, images.png(), account=owner)
    expected = {camera["id"]: True, oriented_only["id"]: False, plain["id"]: False}
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with AsyncSession(engine) as session:
            found = {i: await repository.has_camera_exif(session, uuid.UUID(i)) for i in expected}
        assert found == expected
        async with engine.connect() as connection:
            assert await _in_write(connection, uuid.UUID(camera["id"]))
    finally:
        await engine.dispose()


async def _in_write(connection: AsyncConnection, image_id: uuid.UUID) -> bool:
    return await connection.run_sync(lambda sync: repository.has_camera_exif_in(sync, image_id))


# ---- the reader itself: defensive field by field ------------------------------------


@pytest.mark.parametrize(
    ("original", "offset", "taken_at"),
    [
        (b"2024:05:01 14:22:33", b"+02:00", "2024-05-01T14:22:33+02:00"),
        (b"2024:05:01 14:22:33", b"-09:30", "2024-05-01T14:22:33-09:30"),
        (b"2024:05:01 14:22:33", b"+00:00", "2024-05-01T14:22:33+00:00"),
        (b"2024:05:01 14:22:33", b"   :  ", "2024-05-01T14:22:33"),  # "unknown", per EXIF
        (b"2024:05:01 14:22:33", b"+14:30", "2024-05-01T14:22:33"),  # no such zone
        (b"    :  :     :  :  ", b"+02:00", "2024-06-30T09:00:00"),  # unknown: DateTime
        (b"0000:00:00 00:00:00", b"", "2024-06-30T09:00:00"),
        (b"2024:02:30 10:00:00", b"", "2024-06-30T09:00:00"),  # 30 February
    ],
)
def test_taken_at(original: bytes, offset: bytes, taken_at: str) -> None:
    exif = tiff(
        [(DATE_TIME, *ascii_(b"2024:06:30 09:00:00"))],
        [(DATE_TIME_ORIGINAL, *ascii_(original)), (OFFSET_TIME_ORIGINAL, *ascii_(offset))],
    )
    assert camera_details(exif, None).taken_at == taken_at


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            [(LENS_MODEL, *ascii_(b"XF35mmF1.4 R")), (LENS_MAKE, *ascii_(b"FUJIFILM"))],
            "FUJIFILM XF35mmF1.4 R",
        ),
        ([(LENS_MODEL, *ascii_(b"Canon RF50mm")), (LENS_MAKE, *ascii_(b"Canon"))], "Canon RF50mm"),
        ([(LENS_MAKE, *ascii_(b"Sigma"))], None),  # a maker is not a lens
        ([(LENS_MODEL, 129, 9, "Объектив".encode()[:9])], "Объе"),  # cut inside a character
        ([(LENS_MODEL, 129, 4, b"\xc3\x28ab")], None),  # not UTF-8
        ([(LENS_MODEL, 129, 16, "Объектив".encode())], "Объектив"),  # EXIF 3.0 UTF-8
    ],
)
def test_lens(entries: list[Entry], expected: str | None) -> None:
    assert camera_details(tiff([], entries), None).lens == expected


@pytest.mark.parametrize(
    ("entries", "iso"),
    [
        ([(ISO, 3, 1, struct.pack("<H", 100))], 100),
        ([(ISO, 3, 2, struct.pack("<HH", 200, 400))], 200),  # the first of several
        ([(ISO, 4, 1, struct.pack("<I", 3200))], 3200),
        (
            [(ISO, 3, 1, struct.pack("<H", 65535)), (0x8833, 4, 1, struct.pack("<I", 102_400))],
            102_400,
        ),  # saturated: ISOSpeed has the value
        ([(ISO, 3, 1, struct.pack("<H", 65535))], 65535),
        ([(ISO, 3, 1, struct.pack("<H", 0))], None),
        ([(ISO, 5, 1, struct.pack("<II", 400, 1))], None),  # a rational is the wrong type
    ],
)
def test_iso(entries: list[Entry], iso: int | None) -> None:
    assert camera_details(tiff([], entries), None).iso == iso


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ((EXPOSURE_TIME, *rational(1, 8000)), 1 / 8000),
        ((EXPOSURE_TIME, *rational(30, 1)), 30.0),
        ((EXPOSURE_TIME, 10, 1, struct.pack("<ii", -1, 250)), None),  # negative
        ((EXPOSURE_TIME, *rational(2**32 - 1, 1)), None),  # 136 years
        ((EXPOSURE_TIME, 11, 1, struct.pack("<f", math.inf)), None),
        ((EXPOSURE_TIME, 12, 1, struct.pack("<d", 0.5)), 0.5),
        ((EXPOSURE_TIME, 5, 0, b""), None),  # no value at all
    ],
)
def test_exposure_time(entry: Entry, expected: float | None) -> None:
    assert camera_details(tiff([], [entry]), None).exposure_time == expected


def test_the_orientation_is_the_one_the_container_walk_read() -> None:
    assert camera_details(None, 8) == CameraDetails(orientation=8)
    assert camera_details(camera_exif(), 9).orientation is None
    assert not camera_details(b"not exif", None).present


def _mutations(seed: int) -> Iterator[bytes]:
    rng, original = random.Random(seed), camera_exif()
    for _ in range(1_500):
        data = bytearray(original)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(6, len(data))] = rng.randrange(256)
        yield bytes(data[: rng.randrange(8, len(data) + 1)] if rng.random() < 0.2 else data)


def test_mutated_exif_gives_bounded_details_and_never_raises() -> None:
    for data in _mutations(16):
        details = camera_details(data, 6)
        for name in ("camera_make", "camera_model", "lens", "taken_at"):
            value = getattr(details, name)
            assert value is None or (0 < len(value) <= MAX_TEXT and value.isprintable())
        for name in ("exposure_time", "f_number", "focal_length"):
            value = getattr(details, name)
            assert value is None or (math.isfinite(value) and value > 0)


def test_only_the_first_entries_of_a_huge_ifd_are_read() -> None:
    entries: list[Entry] = [(0x9000 + i % 0x100, 3, 1, b"\x01\x00") for i in range(65_000)]
    exif = tiff([], [*entries, (ISO, 3, 1, struct.pack("<H", 800))])
    # Only the first `_MAX_ENTRIES` of an IFD are looked at: a camera writes < 100.
    assert camera_details(exif, None).iso is None
