"""The `chitram` command: serve, worker, migrate, reconcile, backup, restore."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from app.config import Settings, SettingsError, load_settings
from app.infra.logging import configure_logging

BACKEND_DIR = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chitram", description="Self-hostable image hosting")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API and web UI")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    worker = commands.add_parser("worker", help="run thumbnail jobs from Redis (REDIS_URL)")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.add_argument(
        "--metrics-port", type=int, default=9101, help="Prometheus metrics; 0 turns them off"
    )
    commands.add_parser("migrate", help="bring the database schema up to date")
    reconcile = commands.add_parser("reconcile", help="repair drift between rows and objects")
    reconcile.add_argument("--dry-run", action="store_true", help="only report")
    backup = commands.add_parser("backup", help="write the database and every object to a file")
    backup.add_argument("path", type=Path, help="the tar file to write")
    restore = commands.add_parser("restore", help="load a backup into an empty instance")
    restore.add_argument("path", type=Path, help="a file written by `chitram backup`")
    restore.add_argument("--force", action="store_true", help="even into a non-empty database")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:  # its message quotes no values: they may be secrets
        sys.stderr.write(f"chitram {args.command}: {exc}\n")
        return 2
    configure_logging(settings.log_format, settings.log_level)
    if args.command == "serve":
        return _serve(args.host, args.port, args.workers, settings)
    if args.command == "migrate":
        migrate(settings)
        return 0
    if args.command in ("backup", "restore"):
        if args.command == "restore":
            migrate(settings)  # an empty instance gets its schema first
        return asyncio.run(_backup_or_restore(settings, args))
    if args.command == "worker":
        from app.jobs.worker import run_worker

        return asyncio.run(
            run_worker(settings, metrics_host=args.metrics_host, metrics_port=args.metrics_port)
        )
    return asyncio.run(_reconcile(settings, dry_run=args.dry_run))


def _serve(host: str, port: int, workers: int, settings: Settings) -> int:
    import uvicorn

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WEB_PROCESSES"] = str(workers)  # read by each worker's Settings
    uvicorn.run(
        "app.main:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,  # client addresses are resolved by TRUSTED_PROXIES instead
        server_header=False,
        log_config=None,
    )
    return 0


def migrate(settings: Settings) -> None:
    """Run Alembic's upgrade to head against the configured database."""
    from alembic import command
    from alembic.config import Config

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(BACKEND_DIR / "migrations"))
    config.attributes["database_url"] = settings.resolved_database_url
    command.upgrade(config, "head")


async def _reconcile(settings: Settings, *, dry_run: bool) -> int:
    from app.ops.reconcile import reconcile
    from app.wiring import close_resources, open_resources

    resources = await open_resources(settings)
    try:
        report = await reconcile(resources, dry_run=dry_run)
    finally:
        await close_resources(resources)
    json.dump({**asdict(report), "clean": report.clean}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


async def _backup_or_restore(settings: Settings, args: argparse.Namespace) -> int:
    from app.ops.backup import BackupError, backup, restore

    try:
        if args.command == "backup":
            report = await backup(settings, args.path)
        else:
            report = await restore(settings, args.path, force=args.force)
    except BackupError as exc:
        sys.stderr.write(f"chitram {args.command}: {exc}\n")
        return 1
    json.dump(asdict(report), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if not report.missing_objects else 3


if __name__ == "__main__":
    raise SystemExit(main())
