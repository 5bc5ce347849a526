"""What a browser does with the library's pages over HTTP, shared by the page tests: sign
in, read the page's CSRF token, post its forms; and an EXIF JPEG from a camera."""

from __future__ import annotations

import io
import re
from typing import Any

import anyio
import httpx
from PIL import Image, TiffImagePlugin

from tests.support.accounts import PASSWORD, Account

TIMES = "\N{MULTIPLICATION SIGN}"  # as pages write dimensions ("96 by 64")
EXIF_IFD = 0x8769
MAKE, MODEL = 0x010F, 0x0110
EXPOSURE_TIME, F_NUMBER, ISO, FOCAL_LENGTH = 0x829A, 0x829D, 0x8827, 0x920A
DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL, LENS_MODEL = 0x9003, 0x9011, 0xA434


def picture(width: int, height: int, tint: tuple[int, int, int] = (40, 120, 200)) -> Image.Image:
    """A picture worth looking at in a screenshot: `tint` fading across, light rising."""
    across = Image.linear_gradient("L").rotate(90).resize((width, height))
    down = Image.linear_gradient("L").resize((width, height))
    channels = [
        Image.merge("RGB", (across, down, across))
        .getchannel(i)
        .point(lambda v, c=c: int(c * (0.35 + 0.65 * v / 255)))
        for i, c in enumerate(tint)
    ]
    return Image.merge("RGB", channels)


def png_picture(width: int, height: int, tint: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    picture(width, height, tint).save(buffer, "PNG")
    return buffer.getvalue()


def camera_jpeg(width: int = 96, height: int = 64) -> bytes:
    """A JPEG as a camera writes it: make, model, lens, time taken, exposure 1/250 s,
    f/2.8, ISO 400, 35 mm."""
    exif = Image.Exif()
    exif[MAKE], exif[MODEL] = "Chitram Optics", "Pinhole One"
    camera = exif.get_ifd(EXIF_IFD)
    camera[EXPOSURE_TIME] = TiffImagePlugin.IFDRational(1, 250)
    camera[F_NUMBER] = TiffImagePlugin.IFDRational(28, 10)
    camera[ISO] = 400
    camera[FOCAL_LENGTH] = TiffImagePlugin.IFDRational(35, 1)
    camera[LENS_MODEL] = "Prime 35mm F2.8"
    camera[DATE_TIME_ORIGINAL] = "2024:05:01 14:22:33"
    camera[OFFSET_TIME_ORIGINAL] = "+02:00"
    buffer = io.BytesIO()
    picture(width, height).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, account: Account) -> str:
    """Sign the client's browser in as `account`; the CSRF token of its session."""
    token = csrf_of(await client.get("/login"))
    form = {"email": account.email, "password": PASSWORD, "csrf_token": token}
    response = await client.post("/login", data=form)
    assert response.status_code == 303, response.text
    return csrf_of(await client.get("/albums"))


async def post_form(
    client: httpx.AsyncClient, path: str, token: str, **form: Any
) -> httpx.Response:
    """Post a page's form as the browser does, with its CSRF token."""
    return await client.post(path, data={**form, "csrf_token": token})


def browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser (its own cookie jar) on the same app."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://testserver")


async def wait_until_gone(client: httpx.AsyncClient, path: str, seconds: float = 10) -> None:
    """Poll `path` until it answers 404."""
    with anyio.fail_after(seconds):
        while True:
            if (await client.get(path)).status_code == 404:
                return
            await anyio.sleep(0.05)


def meta(page: httpx.Response, name: str) -> str | None:
    """The content of the page's `<meta property|name="name">`."""
    found = re.search(rf'<meta (?:property|name)="{re.escape(name)}" content="([^"]*)"', page.text)
    return found.group(1) if found else None
