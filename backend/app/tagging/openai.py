"""`TAGGER=openai`: any OpenAI-compatible chat-completions endpoint with image input
(OpenAI, Ollama, vLLM), asked for a JSON array of tags about a small JPEG of the image.

The image travels as a `data:` URL of a JPEG at most `IMAGE_SIDE` pixels a side, made
from the large thumbnail: never the original's bytes, which may be megabytes and carry
metadata. Replies are read leniently (a JSON array, an object holding one, a code fence,
or plain comma- or line-separated text) and then strictly: only tags that obey the tag
rules are kept, at most `TAGGER_MAX_TAGS`. Every call goes through the `tagger` circuit
breaker, so a dead endpoint fails jobs at once instead of holding them for the timeout.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx

from app.config import Settings
from app.infra.circuits import Circuit, CircuitOpen
from app.tagging.base import TaggerError, TagInput, clean_tags

IMAGE_SIDE = 512
MAX_REPLY_BYTES = 256 * 1024
MAX_TOKENS = 200
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def instruction(max_tags: int) -> str:
    return (
        f"Give at most {max_tags} short tags that describe this image: its subject, "
        "scene, objects or style. Each tag is one or two lowercase words. Reply with a "
        'JSON array of strings only, for example ["beach", "sunset", "dog"].'
    )


class OpenAITagger:
    """Tags from a vision model behind an OpenAI-compatible API."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        circuit: Circuit | None = None,
    ) -> None:
        assert settings.tagger_url is not None  # Settings refuses TAGGER=openai without it
        self.url = f"{settings.tagger_url}/chat/completions"
        self.model = settings.tagger_model
        self.max_tags = settings.tagger_max_tags
        headers = {"Accept": "application/json"}
        if settings.tagger_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.tagger_api_key.get_secret_value()}"
        self.client = client or httpx.AsyncClient(
            headers=headers, timeout=settings.tagger_timeout_seconds, follow_redirects=False
        )
        self.circuit = circuit or Circuit("tagger")

    async def tag(self, image: TagInput) -> list[str]:
        jpeg = await image.pixels.jpeg(IMAGE_SIDE)
        reply = await self._ask(self.request(jpeg))
        return parse_tags(content_of(reply), self.max_tags)

    def request(self, jpeg: bytes) -> dict[str, Any]:
        data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        return {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": instruction(self.max_tags)},
                        {"type": "image_url", "image_url": {"url": data_url}},
                    ],
                }
            ],
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
        }

    async def _ask(self, body: dict[str, Any]) -> bytes:
        """The reply's body; any failure to get a 2xx one counts against the breaker."""
        try:
            async with self.circuit.guard():
                try:
                    async with self.client.stream("POST", self.url, json=body) as response:
                        if response.status_code >= 300:
                            raise TaggerError(f"the tagger answered HTTP {response.status_code}")
                        return await _read_capped(response)
                except httpx.HTTPError as exc:
                    raise TaggerError(f"the tagger could not be reached: {exc!r}") from exc
        except CircuitOpen as exc:
            raise TaggerError(str(exc)) from exc

    async def close(self) -> None:
        await self.client.aclose()


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise TaggerError(f"the tagger's reply is over {MAX_REPLY_BYTES} bytes")
    return bytes(body)


def content_of(reply: bytes) -> str:
    """The assistant's text in a chat-completions reply; `TaggerError` when it has none."""
    try:
        content = json.loads(reply)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise TaggerError("the tagger's reply is not a chat completion") from exc
    if isinstance(content, list):  # content parts, as some servers answer
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise TaggerError("the tagger's reply holds no text")
    return content


def parse_tags(text: str, limit: int) -> list[str]:
    """The valid tags in a model's reply, at most `limit`. `TaggerError` when the reply
    holds none at all and is not an (empty) JSON array: the model did not do the task."""
    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    candidates = _json_tags(body)
    if candidates is None:
        parts = re.split(r"[,\n]", body)
        candidates = [_BULLET.sub("", part).strip().strip("\"'`") for part in parts]
    tags = clean_tags(candidates, limit)
    if not tags and candidates:
        raise TaggerError("the tagger's reply holds no valid tag")
    return tags


def _json_tags(body: str) -> list[str] | None:
    """The strings of a JSON array in `body` (or of an object's first array), else None."""
    start, end = body.find("["), body.rfind("]")
    for text in (body, body[start : end + 1] if 0 <= start < end else None):
        if text is None:
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            value = next((v for v in value.values() if isinstance(v, list)), None)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, str)]
    return None
