"""The tagger `TAGGER` names, or None for `none` (no tag jobs at all)."""

from __future__ import annotations

from app.config import Settings
from app.tagging.base import Tagger
from app.tagging.basic import BasicTagger
from app.tagging.openai import OpenAITagger


def build_tagger(settings: Settings) -> Tagger | None:
    if settings.tagger == "basic":
        return BasicTagger(settings.tagger_max_tags)
    if settings.tagger == "openai":
        return OpenAITagger(settings)
    return None
