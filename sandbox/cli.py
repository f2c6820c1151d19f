"""`python -m sandbox`: parse the settings, start the probes, run the worker until drained."""

from __future__ import annotations

import json
import logging
import sys

import anyio

from sandbox.health import Health, serve
from sandbox.settings import Settings, SettingsError, parse
from sandbox.worker import PoolWorker, platform_client

log = logging.getLogger("sandbox")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # One line per HTTP request would bury the worker's own messages.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def run(settings: Settings) -> int:
    health = Health(settings.readiness_window_seconds)
    server = serve(health, settings.health_host, settings.health_port)
    try:
        worker = PoolWorker(settings, platform_client(health, settings.environment_key), health)
        anyio.run(worker.run)
    except Exception:
        log.exception("worker stopped")
        return 1
    finally:
        server.shutdown()
        server.server_close()
    log.info("drained; exiting")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse(sys.argv[1:] if argv is None else argv)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    return run(settings)
