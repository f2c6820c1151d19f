"""pydantic's errors as the user reads them: `field.path: message`, nothing echoed back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from infra.pure.config.perimeter import PerimeterConfig

# --- errors and loading -----------------------------------------------------------------------


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed: the key is the path
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """Walk the model along an error location to name the keys that are allowed there."""
    model: Any = PerimeterConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                continue  # a dict key such as a database name
            model = _inner_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = _path(loc)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            problems.append((path, f"unknown key; allowed keys here: {', '.join(allowed)}"))
        elif err["type"] == "cross_reference":
            for line in err["msg"].splitlines():
                sub, _, message = line.partition(": ")
                problems.append((f"{path}.{sub}" if path else sub, message))
        else:
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if ": " in message and message.split(": ", 1)[0].startswith("grants["):
                sub, message = message.split(": ", 1)
                path = f"{path}.{sub}" if path else sub
            problems.append((path, message))
    return problems
