"""The stack-file source: `Pulumi.<stack>.yaml` read strictly (duplicate keys, keys as
written, no plaintext secret), then validated, with prompt files confined to the repo.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from infra.offline.errors import ConfigError
from infra.pure.config.keys import (
    OBJECT_SECRETS,
    PERIMETER_KEY,
    PROJECT,
    RENAMED_SECRET_KEYS,
    SECRET_KEYS,
)
from infra.pure.config.perimeter import PerimeterConfig
from infra.pure.config.problems import validation_problems

# A system prompt is instructions, not a corpus: a bigger file is a wrong path or a pasted dump.
MAX_PROMPT_BYTES = 64 * 1024
# The project's checkout (Pulumi.yaml's directory): a stack file elsewhere may still use its
# prompts.
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def read_prompt(base: Path, relative: str) -> str:
    """The prompt file's text, confined to the stack file's directory or the project: a path
    (absolute, a `..` escape or a symlink) resolving outside them would make any file the
    machine can read (say /etc/passwd) an agent's instructions, sent to the platform."""
    root = base.resolve()
    roots = (root, PROJECT_ROOT)
    try:
        path = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        reason = getattr(exc, "strerror", None) or "a symlink loop"
        raise ValueError(
            f"cannot read {relative!r} ({reason}); the path is relative to the stack file"
        ) from None
    if not any(path.is_relative_to(r) for r in roots):
        raise ValueError(
            f"{relative!r} resolves outside {root} and the project: "
            "prompt files must live in the repository"
        )
    if not path.is_file():
        raise ValueError(f"{relative!r} is not a regular file")
    size = path.stat().st_size
    if size > MAX_PROMPT_BYTES:
        raise ValueError(f"{relative!r} is {size} bytes; a prompt file may have {MAX_PROMPT_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{relative!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read {relative!r} ({exc.strerror})") from None
    if not text:
        raise ValueError(f"{relative!r} is empty: an agent needs instructions")
    return text


def parse_perimeter(raw: Any, source: str, base_dir: Path | None = None) -> PerimeterConfig:
    """Validate the settings; system prompt files are read relative to `base_dir`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(source, [(PERIMETER_KEY, "missing, or not a mapping of settings")])
    try:
        config = PerimeterConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc)) from None
    base = base_dir or Path(source).resolve().parent
    problems = []
    for i, agent in enumerate(config.agents):
        try:
            config._prompts[agent.name] = read_prompt(base, agent.system_prompt_file)
        except ValueError as exc:
            problems.append((f"agents[{i}].system_prompt_file", str(exc)))
    if problems:
        raise ConfigError(source, problems)
    return config


def stack_file(stack: str, root: Path | None = None) -> Path:
    root = root or PROJECT_ROOT
    return root / f"Pulumi.{stack}.yaml"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that is told about duplicate keys instead of keeping the last one silently."""


def _yaml_path(parts: list[str]) -> str:
    out = ""
    for part in parts:
        out += part if part.startswith("[") else (f".{part}" if out else part)
    return out


def _duplicate_keys(node: yaml.Node, at: list[str]) -> list[tuple[str, str]]:
    """Every mapping key written twice, with its path and both lines (never the value)."""
    problems: list[tuple[str, str]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            line = key.start_mark.line + 1
            if name in first:
                problems.append(
                    (
                        _yaml_path([*at, str(name)]).removeprefix(f"config.{PERIMETER_KEY}."),
                        f"key written twice (lines {first[name]} and {line}); "
                        "YAML would silently keep the last one",
                    )
                )
            first.setdefault(name, line)
            problems += _duplicate_keys(value, [*at, str(name)])
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, [*at, f"[{i}]"])
    return problems


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What the parser objects to and where, without the source excerpt PyYAML appends
    (it quotes the offending line, which may hold a secret)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if isinstance(exc, yaml.reader.ReaderError):
        return (
            f"not valid YAML: character {exc.character!r} at position {exc.position} is not allowed"
        )
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    context = getattr(exc, "context", None)
    return f"not valid YAML: {where}{problem}" + (f" ({context})" if context else "")


def _keys_as_written(node: yaml.Node) -> None:
    """Every mapping key is the text written: YAML 1.1 reads an unquoted `on`, `yes` or `ON`
    as a boolean and `8080` as a number, and an error would then name `tunnel[1]`, a list
    index, instead of the key `tunnel.on`. No key of the settings is anything but a name."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                key.tag = "tag:yaml.org,2002:str"
            _keys_as_written(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _keys_as_written(item)


def _parse_yaml(text: str) -> tuple[Any, list[tuple[str, str]]]:
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        duplicates = _duplicate_keys(node, [])
        _keys_as_written(node)
        return loader.construct_document(node), duplicates
    finally:
        loader.dispose()


def _plaintext_secrets(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Secret keys must hold `secure:` values (encrypted by `pulumi config set --secret`)."""
    problems: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            if not isinstance(value["secure"], str):
                problems.append((path, "a `secure:` value must be the ciphertext Pulumi wrote"))
            return
        if isinstance(value, Mapping) and path.split(".", 1)[0].endswith(
            tuple(f":{k}" for k in OBJECT_SECRETS)
        ):
            for name, item in value.items():
                walk(item, f"{path}.{name}")
            return
        problems.append(
            (
                path,
                "written in plain text; remove it from the file and set it with "
                "`pulumi config set --secret` (the value is not shown here)",
            )
        )

    for key in SECRET_KEYS:
        full = f"{PROJECT}:{key}"
        if full in config:
            walk(config[full], full)
    return problems


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` map of a stack file; raises on any file-level problem."""
    config, problems = _read_stack_file(path)
    if problems:
        raise ConfigError(str(path), problems)
    return config


def _read_stack_file(path: Path) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The `config:` map and every file-level problem: encoding, syntax, duplicate keys,
    unknown project keys, secrets in plain text. Fatal ones raise at once."""
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, [("", f"stack file {path} does not exist")]) from None
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read {path}: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source,
            [
                (
                    "",
                    f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}; save the file as UTF-8",
                )
            ],
        ) from None
    try:
        document, problems = _parse_yaml(text.removeprefix("\ufeff"))
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("", _yaml_problem(exc))]) from None
    document = document or {}
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(source, [*problems, ("config", "must be a mapping of stack settings")])
    known = {PERIMETER_KEY} | {f"{PROJECT}:{k}" for k in SECRET_KEYS}
    problems += [
        (str(k), f"replaced by {RENAMED_SECRET_KEYS[str(k).split(':', 1)[1]]}")
        if str(k).split(":", 1)[1] in RENAMED_SECRET_KEYS
        else (str(k), f"unknown key; allowed: {', '.join(sorted(known))}")
        for k in config
        if str(k).startswith(f"{PROJECT}:") and k not in known
    ]
    problems += _plaintext_secrets(config)
    return config, problems


def load_stack_file(path: Path) -> PerimeterConfig:
    """Every problem of the file and of its settings, reported together."""
    config, problems = _read_stack_file(path)
    try:
        parsed = parse_perimeter(config.get(PERIMETER_KEY), str(path), path.resolve().parent)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(str(path), problems)
    return parsed


def load(stack: str | None = None, config_file: str | Path | None = None) -> PerimeterConfig:
    """The offline commands' entry: `--stack <env>` or `--config <file>`."""
    if config_file is not None:
        return load_stack_file(Path(config_file))
    if stack is None:
        raise ConfigError("command line", [("", "give --stack <env> or --config <file>")])
    return load_stack_file(stack_file(stack))
