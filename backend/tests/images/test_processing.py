"""Upload processing as it runs in production: in a CPU-pool worker process."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.images.validation import Limits, process_upload
from app.infra.cpu import CpuPool
from tests.images import factories

pytestmark = pytest.mark.anyio


async def test_an_operator_may_allow_more_pixels_than_pillows_own_guard(tmp_path: Path) -> None:
    """Pillow refuses images over 2 x 89.5 MP by itself; a higher MAX_IMAGE_PIXELS must win
    in the worker process that decodes, not just in the server process."""
    data = factories.bilevel_png(13_500, 13_500)  # 182 MP, above Pillow's hard limit
    path = tmp_path / "big.png"
    path.write_bytes(data)
    limits = Limits(
        allowed_formats=("png",),
        max_pixels=200_000_000,
        max_side=30_000,
        max_frames=1,
        strip_metadata=True,
    )
    pool = CpuPool(workers=1)
    try:
        await pool.start()
        processed = await pool.run(process_upload, path, hashlib.sha256(data).hexdigest(), limits)
    finally:
        pool.close()
    assert (processed.info.width, processed.info.height) == (13_500, 13_500)
