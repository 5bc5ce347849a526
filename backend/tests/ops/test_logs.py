"""The logs of a real `chitram serve`: JSON lines, one access line per request with its
request id, route template and user, and no secrets, tokens or full client addresses."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx

from app.infra.logging import ConsoleFormatter
from tests.support import images
from tests.support.accounts import PASSWORD, TEST_JWT_SECRET
from tests.support.server import LiveServer, live_server


def _when_logged(server: LiveServer, request_id: str) -> str:
    """The server's log once it holds `request_id`'s access line (written after the
    response is sent, so a client can be faster than it)."""
    deadline = time.monotonic() + 10
    while True:
        log = server.log()
        complete = log.split("\n")[:-1]  # the last one may still be being written
        lines = [json.loads(line) for line in complete if line.strip()]
        if any(
            line["logger"] == "chitram.access" and line["request_id"] == request_id
            for line in lines
        ):
            return log
        assert time.monotonic() < deadline, log[-2000:]
        time.sleep(0.05)


def test_logs_are_json_with_request_ids_and_no_secrets(tmp_path: Path) -> None:
    env = {
        "DATA_DIR": str(tmp_path),
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    with live_server(env, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        account = {"email": "logs@example.com", "password": PASSWORD}
        token = client.post("/api/v1/auth/register", json=account).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        key = client.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=auth).json()["key"]
        anonymous = client.post(
            "/api/v1/images/upload",
            files={"file": ("x.png", images.png())},
            headers={"X-Request-ID": "log-test-1"},
        ).json()
        owned = client.post(
            "/api/v1/images/upload",
            files={"file": ("y.png", images.png(9, 9))},
            headers={"X-API-Key": key},
        ).json()
        client.delete(anonymous["delete_url"])
        client.get(f"/api/v1/images/{owned['id']}", headers={**auth, "X-Request-ID": "last-1"})
        log = _when_logged(server, "last-1")
    secrets = (PASSWORD, token, key, anonymous["delete_token"], TEST_JWT_SECRET)
    for secret in secrets:
        assert secret not in log
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # all JSON
    access = [line for line in lines if line["logger"] == "chitram.access"]
    upload = next(line for line in access if line["request_id"] == "log-test-1")
    assert upload["route"] == "/api/v1/images/upload"
    assert upload["status"] == 201
    assert upload["user_id"] is None
    assert upload["client"] == "127.0.0.0/24"  # the network, not the address
    uploaded = [line for line in lines if line["msg"] == "image uploaded"]
    assert any(line["request_id"] == "log-test-1" for line in uploaded)  # app lines too
    read = [
        line
        for line in access
        if line["route"] == "/api/v1/images/{image_id}" and line["method"] == "GET"
    ]
    assert read[-1]["user_id"] is not None
    assert all(owned["id"] not in line["route"] for line in access)  # templates, not ids
    assert all("duration_ms" in line for line in access)


def test_console_lines_show_what_the_access_line_knows() -> None:
    record = logging.LogRecord("chitram.access", logging.INFO, __file__, 1, "request", None, None)
    record.__dict__.update(
        {
            "route": "/api/v1/images/{image_id}",
            "status": 404,
            "duration_ms": 1.5,
            "request_id": "r-9",
        }
    )
    line = ConsoleFormatter().format(record)
    assert "[r-9] chitram.access: request" in line
    assert line.endswith("route=/api/v1/images/{image_id} status=404 duration_ms=1.5")
