"""CPU and memory requests and limits: a limit below its request never schedules."""

from __future__ import annotations

from pydantic import model_validator

from infra.pure.config.types import Quantity, Section, quantity_value, raise_cross_reference


def require_limits_cover_requests(pairs: list[tuple[str, str, str, str]]) -> None:
    """(limit field, limit, request field, request): a limit below its request never schedules."""
    problems = [
        f"{limit_field}: {limit!r} is below {request_field} {request!r}"
        for limit_field, limit, request_field, request in pairs
        if quantity_value(limit) < quantity_value(request)
    ]
    raise_cross_reference(problems)


class ResourceList(Section):
    cpu: Quantity
    memory: Quantity


class Resources(Section):
    requests: ResourceList
    limits: ResourceList

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        require_limits_cover_requests(
            [
                ("limits.cpu", self.limits.cpu, "requests.cpu", self.requests.cpu),
                ("limits.memory", self.limits.memory, "requests.memory", self.requests.memory),
            ]
        )
        return self

    def chart_values(self) -> dict[str, dict[str, str]]:
        return self.model_dump()


def default_resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> Resources:
    return Resources(
        requests=ResourceList(cpu=cpu, memory=memory),
        limits=ResourceList(cpu=cpu_limit, memory=memory_limit),
    )
