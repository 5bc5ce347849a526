"""With `STRIP_METADATA=false`, an MPO is stored whole (its second picture kept) and
shown as one picture: `frames` is 1, as browsers show it."""

from __future__ import annotations

import httpx
import pytest

from tests.images import realworld
from tests.images.realworld import BLUE, RED

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_kind() -> str:
    return "sqlite"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"strip_metadata": False}


async def test_an_unstripped_mpo_is_served_whole_and_counts_one_frame(
    client: httpx.AsyncClient,
) -> None:
    data = realworld.mpo(RED, BLUE)
    response = await client.post("/api/v1/images/upload", files={"file": ("stereo.jpg", data)})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["content_type"], body["frames"]) == ("image/jpeg", 1)

    served = await client.get(f"/api/v1/images/{body['id']}/file")
    assert served.content == data  # the contract: the uploaded bytes exactly
