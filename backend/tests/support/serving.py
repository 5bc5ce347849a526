"""The contract's serving headers, shared by originals and thumbnails."""

from __future__ import annotations

import httpx


def assert_serving_headers(response: httpx.Response, *, content_disposition: str) -> None:
    """Every header contract section 3 lists for a served file or thumbnail."""
    h = response.headers
    assert h["content-length"] == str(len(response.content))
    assert h["last-modified"].endswith("GMT")
    assert h["cache-control"] == "public, max-age=31536000, immutable"
    assert h["accept-ranges"] == "bytes"
    assert h["x-content-type-options"] == "nosniff"
    assert h["content-security-policy"] == "default-src 'none'; sandbox"
    assert h["content-disposition"] == content_disposition
