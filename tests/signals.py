"""SIGTERM (a CI timeout, a `kill`) raised as KeyboardInterrupt: pytest then runs every
teardown, so each server a test started is stopped by PID rather than left running."""

from __future__ import annotations

from types import FrameType


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
