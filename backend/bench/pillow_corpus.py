"""Pillow's own test images through a live server: real-world and broken files, ~1,060 of them.

Usage (from `backend/`)::

    uv run python -m bench.pillow_corpus                  # downloads the sdist once, caches it
    uv run python -m bench.pillow_corpus --dir path/to/Tests/images
    uv run python -m bench.pillow_corpus --only apng      # files whose path contains "apng"

Unless given `--dir`, it runs `pip download --no-binary :all: --no-deps pillow==<installed>`
into the cache directory and extracts `Tests/images` (regular files only). It starts one
embedded server on loopback (see `common.embedded_server`), uploads every file, waits for
the thumbnails and classifies each file:

- Pillow's verdict, in this process: the format it opens the file as, and whether every
  frame decodes (at most `FRAME_CAP` frames are visited), on what browsers read of the
  file (`browser_view`);
- ours: the upload's status and error code, the `frames` field;
- the thumbnail (large): made at all, alpha kept when the frame shown has transparent
  pixels, and for an APNG whose default image is not part of its animation, that it
  shows the first animation frame rather than the hidden default image;
- the served original decodes.

Offenders, listed after the table:

- `5xx`: any 5xx answer;
- `false accept`: 201 for a file Pillow cannot decode in an allowed format, or whose
  thumbnail job fails, or whose served original does not decode;
- `false refuse`: 4xx for a file Pillow decodes whole in an allowed format, unless the
  refusal is a documented limit (see `DOCUMENTED`);
- `alpha lost`, `hidden frame shown`, `frames wrong`: thumbnail and metadata checks.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import PIL
from PIL import Image, ImageChops, ImageSequence

from bench.common import (
    add_server_env,
    describe_code,
    embedded_server,
    machine_info,
    print_table,
    server_env,
    timestamp,
    write_results,
)

UPLOAD = "/api/v1/images/upload"
ALLOWED = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
FRAME_CAP = 10_000
THUMBNAIL_WAIT_S = 120.0
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # the server's default
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chitram-bench"
# Refusals that are documented limits, not false refusals: (status, code, message part).
DOCUMENTED = [
    (413, "FILE_TOO_LARGE", ""),  # MAX_UPLOAD_BYTES
    (413, "IMAGE_TOO_LARGE", ""),  # MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, frame budgets
    (415, "INVALID_FILE_FORMAT", "CRC"),  # browsers refuse bad chunk CRCs too
    (415, "INVALID_FILE_FORMAT", "critical chunk"),  # unknown critical PNG chunk (PNG spec)
]


# --------------------------------------------------------------------------- corpus


def corpus_dir(cache: Path) -> Path:
    """Tests/images of the installed Pillow's sdist, downloaded and extracted once."""
    version = PIL.__version__
    images = cache / f"pillow-{version}" / "Tests" / "images"
    if images.is_dir():
        return images
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"pillow-{version}.tar.gz"
    if not sdist.exists():
        pip = [sys.executable, "-m", "pip"]
        if subprocess.run([*pip, "--version"], capture_output=True, check=False).returncode:
            found = shutil.which("pip3") or shutil.which("pip")
            if found is None:
                raise RuntimeError("pip is needed to download the Pillow sdist (or pass --dir)")
            pip = [found]
        command = ["download", "--no-binary", ":all:", "--no-deps", f"pillow=={version}"]
        subprocess.run([*pip, *command, "-d", str(cache)], check=True)
    prefix = f"pillow-{version}/Tests/images/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
        tar.extractall(cache, members=members, filter="data")
    return images


# --------------------------------------------------------------------------- Pillow


@dataclass
class PillowVerdict:
    format: str | None = None
    ok: bool = False  # every frame (up to FRAME_CAP) decodes
    first_ok: bool = False
    error: str | None = None
    frames: int = 0  # frames a browser shows (APNG: without a hidden default image)
    hidden_default: bool = False
    transparent: bool = False  # the frame shown has pixels with alpha < 255
    shown: Image.Image | None = field(default=None, repr=False)  # RGBA frame shown
    hidden: Image.Image | None = field(default=None, repr=False)  # the hidden default


def _rgba(frame: Image.Image) -> Image.Image:
    return frame.convert("RGBA")


def _transparent(image: Image.Image) -> bool:
    alpha = image.getchannel("A")
    histogram = alpha.histogram()
    see_through = sum(histogram[:255])
    return see_through * 100 >= alpha.width * alpha.height  # at least 1% of the pixels


def browser_view(data: bytes) -> bytes:
    """What browsers read of `data`: a GIF stops at a second `GIF8` signature (Pillow skips
    the bytes that start no block and reads the second stream's frames as more frames)."""
    second = data.find(b"GIF8", 6) if data.startswith(b"GIF8") else -1
    return data if second < 0 else data[:second] + b";"


def pillow_verdict(data: bytes) -> PillowVerdict:
    verdict = PillowVerdict()
    data = browser_view(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data)) as image:
                verdict.format = image.format
                image.load()
                verdict.first_ok = True
                verdict.hidden_default = bool(image.info.get("default_image")) and (
                    image.format == "PNG" and getattr(image, "n_frames", 1) > 1
                )
                first = _rgba(image)
                shown = 1 if verdict.hidden_default else 0
                count = 0
                for index, frame in enumerate(ImageSequence.Iterator(image)):
                    if index >= FRAME_CAP:
                        break
                    frame.load()
                    count += 1
                    if index == shown:
                        verdict.shown = _rgba(frame)
                verdict.frames = count - (1 if verdict.hidden_default else 0)
                if verdict.hidden_default:
                    verdict.hidden = first
                verdict.ok = True
        except Exception as exc:  # Pillow raises many types; all mean "does not decode"
            verdict.error = f"{type(exc).__name__}: {exc}"[:200]
    if verdict.shown is not None:
        verdict.transparent = _transparent(verdict.shown)
    return verdict


# --------------------------------------------------------------------------- server


@dataclass
class Outcome:
    path: str
    size: int
    pillow_format: str | None
    pillow_ok: bool
    pillow_error: str | None
    pillow_first_ok: bool = False
    status: int = 0
    code: str | None = None
    message: str | None = None
    image_id: str | None = None
    frames: int | None = None
    expected_frames: int | None = None
    thumbnail_status: str | None = None
    served_decodes: bool | None = None
    alpha_lost: bool = False
    hidden_frame_shown: bool = False
    problems: list[str] = field(default_factory=list)


def upload(client: httpx.Client, path: Path, data: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of an upload. A file over `MAX_UPLOAD_BYTES` may see the
    connection closed while it is still being sent (the server stops reading): that is
    the documented 413, reported as such."""
    try:
        response = client.post(
            UPLOAD, files={"file": (path.name, data, "application/octet-stream")}
        )
    except httpx.TransportError as exc:
        if len(data) > MAX_UPLOAD_BYTES:
            return 413, {"error": {"code": "FILE_TOO_LARGE", "message": "connection closed"}}
        return 0, {"error": {"code": "TRANSPORT_ERROR", "message": repr(exc)}}
    return response.status_code, _json(response)


def _difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0..255) of two RGBA images of one size."""
    diff = ImageChops.difference(a, b)
    histograms = diff.histogram()
    total = sum(i * n for band in range(4) for i, n in enumerate(histograms[band * 256 :][:256]))
    return total / (4 * a.width * a.height)


def check_thumbnail(client: httpx.Client, outcome: Outcome, verdict: PillowVerdict) -> None:
    response = client.get(f"/api/v1/images/{outcome.image_id}/thumbnail", params={"size": "large"})
    if response.status_code != 200:
        outcome.problems.append(f"thumbnail GET {response.status_code}")
        return
    with Image.open(io.BytesIO(response.content)) as thumb:
        thumb.load()
        shown = _rgba(thumb)
        has_alpha = "A" in thumb.getbands()
    if verdict.shown is None:
        return
    if verdict.transparent and not (has_alpha and _transparent(shown)):
        outcome.alpha_lost = True
    if verdict.hidden_default and verdict.hidden is not None and verdict.ok:
        size = shown.size
        to_first = _difference(shown, verdict.shown.resize(size, Image.Resampling.BILINEAR))
        to_hidden = _difference(shown, verdict.hidden.resize(size, Image.Resampling.BILINEAR))
        outcome.hidden_frame_shown = to_hidden + 1 < to_first


def run_corpus(server_url: str, files: list[Path], root: Path) -> list[Outcome]:
    outcomes: list[Outcome] = []
    verdicts: dict[str, PillowVerdict] = {}
    with httpx.Client(base_url=server_url, timeout=60) as client:
        for number, path in enumerate(files, 1):
            data = path.read_bytes()
            verdict = pillow_verdict(data)
            name = str(path.relative_to(root))
            outcome = Outcome(name, len(data), verdict.format, verdict.ok, verdict.error)
            outcome.pillow_first_ok = verdict.first_ok
            outcome.status, body = upload(client, path, data)
            if outcome.status == 201:
                outcome.image_id = body["id"]
                outcome.frames = body.get("frames")
                outcome.expected_frames = (verdict.frames or None) if verdict.ok else None
            else:
                error = body.get("error", {})
                outcome.code, outcome.message = error.get("code"), error.get("message")
            outcomes.append(outcome)
            verdicts[name] = verdict
            if number % 100 == 0:
                print(f"  uploaded {number}/{len(files)}", file=sys.stderr)
        deadline = time.monotonic() + THUMBNAIL_WAIT_S
        for outcome in outcomes:
            if outcome.image_id is None:
                continue
            outcome.thumbnail_status = _wait_thumbnail(client, outcome.image_id, deadline)
            served = client.get(f"/api/v1/images/{outcome.image_id}/file")
            outcome.served_decodes = served.status_code == 200 and _decodes(served.content)
            if outcome.thumbnail_status == "ready":
                check_thumbnail(client, outcome, verdicts[outcome.path])
    for outcome in outcomes:
        classify(outcome)
    return outcomes


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _wait_thumbnail(client: httpx.Client, image_id: str, deadline: float) -> str:
    while True:
        status = str(client.get(f"/api/v1/images/{image_id}").json()["thumbnail_status"])
        if status != "pending" or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def _decodes(data: bytes) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except Exception:
            return False
    return True


def documented(outcome: Outcome) -> bool:
    return any(
        outcome.status == status and outcome.code == code and part in (outcome.message or "")
        for status, code, part in DOCUMENTED
    )


def classify(outcome: Outcome) -> None:
    allowed = outcome.pillow_format in ALLOWED
    if outcome.status >= 500 or outcome.status == 0:
        outcome.problems.append("5xx" if outcome.status else "connection error")
    elif outcome.status == 201:
        # A still image (an MPO's first picture, an APNG with an unusable acTL) needs only
        # its first frame to decode; an animation needs every frame.
        still = outcome.frames == 1 and outcome.pillow_first_ok
        if not (allowed and (outcome.pillow_ok or still)):
            outcome.problems.append("false accept (Pillow does not decode it whole)")
        if outcome.thumbnail_status != "ready":
            outcome.problems.append(f"false accept (thumbnail {outcome.thumbnail_status})")
        if not outcome.served_decodes:
            outcome.problems.append("false accept (served original does not decode)")
        if outcome.alpha_lost:
            outcome.problems.append("alpha lost")
        if outcome.hidden_frame_shown:
            outcome.problems.append("hidden frame shown")
        expected = outcome.expected_frames
        counted = expected is not None and expected < FRAME_CAP
        mpo = outcome.pillow_format == "MPO"  # its first picture only: ADR 0017
        if counted and not mpo and outcome.frames != expected:
            outcome.problems.append(f"frames {outcome.frames}, browsers show {expected}")
    elif allowed and outcome.pillow_ok and not documented(outcome):
        outcome.problems.append("false refuse")


# --------------------------------------------------------------------------- report


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    def count(predicate: Any) -> int:
        return sum(1 for o in outcomes if predicate(o))

    allowed = [o for o in outcomes if o.pillow_format in ALLOWED and o.pillow_ok]
    problems = Counter(p.split(" (")[0] for o in outcomes for p in o.problems)
    return {
        "files": len(outcomes),
        "pillow_decodes_allowed_format": len(allowed),
        "accepted_201": count(lambda o: o.status == 201),
        "refused_4xx": count(lambda o: 400 <= o.status < 500),
        "refused_documented_limit": count(lambda o: 400 <= o.status < 500 and documented(o)),
        "server_5xx": problems["5xx"],
        "connection_errors": problems["connection error"],
        "false_accepts": problems["false accept"],
        "false_refuses": problems["false refuse"],
        "alpha_lost": problems["alpha lost"],
        "hidden_frame_shown": problems["hidden frame shown"],
        "frames_wrong": sum(n for p, n in problems.items() if p.startswith("frames ")),
        "thumbnails_ready": count(lambda o: o.thumbnail_status == "ready"),
        "thumbnails_failed": count(lambda o: o.thumbnail_status == "failed"),
        "by_status": dict(sorted(Counter(str(o.status) for o in outcomes).items())),
    }


def report(outcomes: list[Outcome], summary: dict[str, Any]) -> None:
    rows = [[k, str(v)] for k, v in summary.items() if k != "by_status"]
    rows.append(["by_status", " ".join(f"{k}:{v}" for k, v in summary["by_status"].items())])
    print_table(["measure", "value"], rows)
    offenders = [o for o in outcomes if o.problems]
    if offenders:
        print(f"\nOffenders ({len(offenders)}):")
    for o in offenders:
        ours = f"{o.status} {o.code or ''} {o.message or ''}".strip()
        pillow = f"{o.pillow_format} {'ok' if o.pillow_ok else o.pillow_error}"
        print(f"  {o.path}: {'; '.join(o.problems)} | ours: {ours} | Pillow: {pillow}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="a Tests/images directory (no download)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="download cache")
    parser.add_argument("--only", default="", help="only files whose path contains this")
    add_server_env(parser, "MAX_UPLOAD_BYTES=10485760")
    args = parser.parse_args(argv)
    root = args.dir or corpus_dir(args.cache)
    files = sorted(p for p in root.rglob("*") if p.is_file() and args.only in str(p))
    env = server_env(args.server_env)
    global MAX_UPLOAD_BYTES
    MAX_UPLOAD_BYTES = int(env.get("MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES))
    started = timestamp()
    print(f"{len(files)} files from {root}", file=sys.stderr)
    with embedded_server(**env) as server:
        outcomes = run_corpus(server.url, files, root)
    summary = summarise(outcomes)
    code = machine_info()["code"]
    print(f"\nPillow {PIL.__version__} corpus, {describe_code(code)}\n")
    report(outcomes, summary)
    results = {
        "started_at": started,
        "pillow": PIL.__version__,
        "machine": machine_info(),
        "summary": summary,
        "outcomes": [asdict(o) for o in outcomes],
    }
    path = write_results("pillow_corpus", results)
    print(f"\nresults: {path}", file=sys.stderr)
    return 1 if any(o.problems for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
