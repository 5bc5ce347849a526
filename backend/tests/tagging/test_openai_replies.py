"""Reading a vision model's reply: leniently in form, strictly in what counts as a tag."""

from __future__ import annotations

import json

import pytest

from app.tagging.base import TaggerError, clean_tags
from app.tagging.openai import content_of, parse_tags


def completion(content: object) -> bytes:
    return json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": content}}]}
    ).encode()


@pytest.mark.parametrize(
    ("reply", "tags"),
    [
        ('["beach", "sunset", "dog"]', ["beach", "sunset", "dog"]),
        ('```json\n["Beach", " SUNSET "]\n```', ["beach", "sunset"]),
        ('Sure! Here are the tags: ["beach", "sea side"]. Enjoy.', ["beach", "sea side"]),
        ('{"tags": ["beach", "palm tree"]}', ["beach", "palm tree"]),
        ("beach, sunset, dog", ["beach", "sunset", "dog"]),
        ("- beach\n- sunset\n* dog\n1. cat", ["beach", "sunset", "dog", "cat"]),
        ('"beach", "sunset"', ["beach", "sunset"]),
        ('["beach", "beach", "Beach"]', ["beach"]),
        ("[]", []),
    ],
)
def test_replies_in_every_usual_form(reply: str, tags: list[str]) -> None:
    assert parse_tags(reply, 10) == tags


def test_invalid_tags_are_dropped_and_the_rest_capped() -> None:
    reply = json.dumps(["c++", "beach", "x" * 51, "", "sun/set", "dog", "cat", "sea", "bird"])
    assert parse_tags(reply, 3) == ["beach", "dog", "cat"]


def test_a_reply_without_a_single_tag_is_a_failure() -> None:
    with pytest.raises(TaggerError):
        parse_tags("I'm sorry, I can't help with that.", 5)
    with pytest.raises(TaggerError):
        parse_tags("", 5)


def test_the_text_of_a_completion() -> None:
    assert content_of(completion("beach")) == "beach"
    parts = [{"type": "text", "text": '["beach",'}, {"type": "text", "text": ' "dog"]'}]
    assert content_of(completion(parts)) == '["beach", "dog"]'


@pytest.mark.parametrize(
    "body",
    [b"<html>Bad gateway</html>", b"{}", b'{"choices": []}', completion(None), b"\xff\xfe"],
)
def test_anything_but_a_completion_is_a_failure(body: bytes) -> None:
    with pytest.raises(TaggerError):
        content_of(body)


def test_clean_tags_keeps_order_and_spelling_rules() -> None:
    assert clean_tags(["  Golden   Hour ", "golden hour", "été", "a_b-c 1"], 5) == [
        "golden hour",
        "été",
        "a_b-c 1",
    ]
