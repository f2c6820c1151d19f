"""DNS name syntax, with no dependency: the config's validation and the platform providers
(which run in the engine's provider process, where the config's models are not loaded) judge
a name by the same rule."""

from __future__ import annotations

import ipaddress
import re

HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)


def domain_problem(value: str) -> tuple[str, str] | None:
    """(kind, message) when `value` is not a domain name with at least two labels, the form
    every MCP server URL (https://<route>.<domain>) is built on; None when it is one."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return "domain_ip", f"{value!r} is an IP address; a domain name is required here"
    if not HOSTNAME.fullmatch(value) or "." not in value:
        return "domain", f"{value!r} is not a domain name such as mcp.example.com (lowercase)"
    return None
