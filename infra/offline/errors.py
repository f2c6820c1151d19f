"""Errors every offline command may report, importable without loading the config model."""

from __future__ import annotations


class ConfigError(Exception):
    """Every problem of one configuration, each with its field path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"invalid configuration in {source}: {len(problems)} problem(s)"]
        lines += [
            f"  - {path}: {message}" if path else f"  - {message}" for path, message in problems
        ]
        lines.append("nothing was deployed or written")
        super().__init__("\n".join(lines))
