"""Policy violations as SARIF 2.1.0: what GitHub code scanning reads to annotate a pull request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from infra.offline.locations import Location, LocationIndex
from policies.rules import ADVISORY, MANDATORY, RULES_BY_ID, Violation

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
# SARIF levels: a mandatory rule fails the check (error), an advisory one does not (warning).
LEVELS = {MANDATORY: "error", ADVISORY: "warning"}


def _rule(rule_id: str) -> dict[str, Any]:
    rule = RULES_BY_ID.get(rule_id)
    described = rule.description if rule else rule_id
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": described},
        "help": {"text": rule.hint if rule else described},
    }


def _result(
    violation: Violation, location: Location, uri_base: str | None, rule_index: int
) -> dict[str, Any]:
    artifact: dict[str, Any] = {"uri": location.path}
    if uri_base:
        artifact["uriBaseId"] = uri_base
    return {
        "ruleId": violation.rule_id,
        "ruleIndex": rule_index,
        "level": LEVELS.get(violation.enforcement, "note"),
        "message": {"text": f"{violation.resource}: {violation.message} (hint: {violation.hint})"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact,
                    "region": {"startLine": location.line},
                },
                "logicalLocations": [{"fullyQualifiedName": violation.resource, "kind": "object"}],
            }
        ],
        "partialFingerprints": {"perimeterObject/v1": f"{violation.rule_id}:{violation.resource}"},
    }


def render_sarif(
    violations: Sequence[Violation],
    locations: LocationIndex,
    fallback: Location,
    *,
    uri_base: str | None = None,
    base_uri: str | None = None,
) -> str:
    """One run of the `agent-perimeter` tool; each result points at its object's file and line.

    `uri_base` names the folder the paths are relative to (`base_uri` is its
    absolute file:// URI, when known), so a consumer can resolve them.
    """
    rule_ids = sorted({v.rule_id for v in violations})
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "agent-perimeter",
                "informationUri": "https://github.com/agent-perimeter/agent-perimeter",
                "rules": [_rule(r) for r in rule_ids],
            }
        },
        "results": [
            _result(v, locations.find(v.resource) or fallback, uri_base, index[v.rule_id])
            for v in violations
        ],
    }
    if uri_base and base_uri:
        run["originalUriBaseIds"] = {uri_base: {"uri": base_uri}}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}, indent=2)
