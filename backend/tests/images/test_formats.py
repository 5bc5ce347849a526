"""The format table: every name of a format leads to the same row."""

from __future__ import annotations

import pytest

from app.config import ALL_FORMATS
from app.images import formats


def test_the_settings_accept_exactly_the_formats_of_the_table() -> None:
    assert tuple(fmt.name for fmt in formats.FORMATS) == ALL_FORMATS


@pytest.mark.parametrize("fmt", formats.FORMATS, ids=lambda fmt: fmt.name)
def test_each_name_of_a_format_finds_it(fmt: formats.Format) -> None:
    assert formats.named(fmt.name) is fmt
    assert formats.by_mime_type(fmt.mime_type) is fmt
    assert formats.by_pillow_name(fmt.pillow) is fmt
    assert formats.by_extension(fmt.extension) is fmt
    assert formats.by_extension("." + fmt.extension.upper()) is fmt


def test_unknown_names_find_nothing() -> None:
    assert formats.by_mime_type("image/svg+xml") is None
    assert formats.by_pillow_name("MPO") is None  # an MPO is shown as its first JPEG
    assert formats.by_extension("bmp") is None
    with pytest.raises(KeyError):
        formats.named("tiff")
