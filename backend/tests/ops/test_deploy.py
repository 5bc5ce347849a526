"""The deployment files agree with the app: compose services, ports, environment and
health checks against the settings the app reads; the Caddyfile against caddy itself.
(There is no Docker engine here, so the compose file is checked, not run.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings
from tests.support.caddy import run_caddy

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
CADDYFILE = ROOT / "Caddyfile"
APP_SERVICES = ("api-1", "api-2", "worker", "migrate")
SETTINGS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service.get("environment", {}).items()}


def test_the_services_are_all_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"caddy", *APP_SERVICES, "postgres", "redis", "seaweedfs"} <= set(services)
    for name in ("prometheus", "grafana", "jaeger"):
        assert services[name]["profiles"] == ["observability"]
    for name in ("caddy", *APP_SERVICES, "postgres", "redis", "seaweedfs"):
        assert "profiles" not in services[name], name


def test_every_app_variable_is_a_setting_and_secrets_come_from_env(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        env = _env(compose["services"][name])
        assert set(env) <= SETTINGS, set(env) - SETTINGS  # a typo would be silently ignored
        assert env["ENVIRONMENT"] == "production"  # refuses default secrets at start-up
        for secret in ("JWT_SECRET", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
            assert re.fullmatch(r"\$\{" + secret + r":\?.+\}", env[secret]), secret
        assert ":${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert env["S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
        assert env["STORAGE_BACKEND"] == "s3"


def test_every_variable_compose_reads_is_in_env_example(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert used <= documented, used - documented
    secrets = ("JWT_SECRET", "POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY")
    for secret in secrets:  # shipped empty: nobody runs with an example secret
        assert re.search(rf"^{secret}=$", example, flags=re.MULTILINE), secret


def _serves_on(service: dict[str, Any]) -> tuple[str, int]:
    command = service["command"]
    return command[command.index("--host") + 1], int(command[command.index("--port") + 1])


def test_api_replicas_serve_where_caddy_and_their_health_checks_look(
    compose: dict[str, Any],
) -> None:
    caddyfile = CADDYFILE.read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams
    targets = upstreams.group(1).split()
    assert targets == ["api-1:8000", "api-2:8000"]
    for name in ("api-1", "api-2"):
        service = compose["services"][name]
        host, port = _serves_on(service)
        assert (host, port) == ("0.0.0.0", 8000)  # noqa: S104 (inside its container)
        assert f"{name}:{port}" in targets
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/health" in probe
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "health_uri /health" in caddyfile
    caddy_deps = compose["services"]["caddy"]["depends_on"]
    assert {k: v["condition"] for k, v in caddy_deps.items()} == {
        "api-1": "service_healthy",
        "api-2": "service_healthy",
    }


def test_worker_metrics_and_prometheus_agree(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    command = worker["command"]
    assert command[:2] == ["chitram", "worker"]
    port = command[command.index("--metrics-port") + 1]
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert targets == {"api-1:8000", "api-2:8000", f"worker:{port}"}
    assert compose["services"]["migrate"]["command"] == ["chitram", "migrate"]


def test_caddy_limits_bodies_like_the_app(compose: dict[str, Any]) -> None:
    caddy = _env(compose["services"]["caddy"])
    upload_limit = int(re.search(r"UPLOAD_BODY_LIMIT:-(\d+)", caddy["UPLOAD_BODY_LIMIT"]).group(1))  # type: ignore[union-attr]
    batch_limit = int(re.search(r"BATCH_BODY_LIMIT:-(\d+)", caddy["BATCH_BODY_LIMIT"]).group(1))  # type: ignore[union-attr]
    defaults = Settings(_env_file=None)
    per_file = defaults.max_upload_bytes
    assert per_file < upload_limit <= per_file + 128 * 1024  # one file and its envelope
    assert batch_limit == defaults.max_batch_files * upload_limit
    caddyfile = CADDYFILE.read_text()
    assert "max_size {$UPLOAD_BODY_LIMIT:" in caddyfile
    assert "max_size {$BATCH_BODY_LIMIT:" in caddyfile


def test_caddy_accepts_the_caddyfile() -> None:
    result = run_caddy("validate", CADDYFILE)
    assert "Valid configuration" in result.stdout + result.stderr


def test_the_image_is_multi_stage_locked_and_not_root() -> None:
    dockerfile = (ROOT / "backend/Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.MULTILINE)) >= 2
    assert "uv sync --frozen --no-dev" in dockerfile
    assert re.search(r"^USER chitram$", dockerfile, flags=re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile
    assert "/health" in dockerfile
    ignored = (ROOT / "backend/.dockerignore").read_text().split()
    assert {".venv", ".env", "data"} <= set(ignored)


def test_the_grafana_dashboard_charts_the_contract_series() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/chitram.json").read_text())
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for series in (
        "chitram_http_requests_total",
        "chitram_http_request_duration_seconds_bucket",
        "chitram_uploads_total",
        "chitram_upload_bytes_total",
        "chitram_cache_requests_total",
        "chitram_rate_limited_total",
        "chitram_thumbnail_queue_depth",
        "chitram_thumbnail_jobs_total",
        "chitram_thumbnail_job_duration_seconds_bucket",
        "chitram_storage_errors_total",
        "chitram_database_errors_total",
    ):
        assert series in queries, series
