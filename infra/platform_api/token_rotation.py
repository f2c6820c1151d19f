"""Which platform token an MCP server must still accept while its vault credential changes.

No API behind it: the engine's own `check(olds, news)` is the only place a program
sees what was applied last. Raising a server's `token_epoch` from N to N+1 yields
`retiring_epoch: N` for that `up` (the server accepts both tokens while the vault
credential moves to the new one); the next `up` yields None and the old token is
dropped.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from infra.platform_api.base import PlatformProvider
from infra.platform_api.connection import plain

# "No token is retiring", as a value: an output the engine records as null is dropped from
# state, and a missing output reads as unknown during a preview, which would rename the
# token Secret (and restart its server) on every preview.
NOT_RETIRING = -1


class TokenRotationProvider(PlatformProvider):
    kind = "token rotation"
    compared = ("epoch", "retiring_epoch")

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        olds, news = plain(olds), plain(news)
        epoch, before = news.get("epoch"), olds.get("epoch")
        retiring = NOT_RETIRING
        failures = []
        if isinstance(before, int) and isinstance(epoch, int) and epoch != before:
            if epoch == before + 1:
                retiring = before
            else:
                failures.append(
                    CheckFailure(
                        "epoch",
                        f"token_epoch of MCP server {news.get('server')} went from {before} to "
                        f"{epoch}: raise it by one per `pulumi up`, so the server keeps accepting "
                        "the previous token while the vault credential changes",
                    )
                )
        return CheckResult({**news, "retiring_epoch": retiring}, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = plain(props)
        return CreateResult(f"{props.get('server')}-token-rotation", props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(plain(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, plain(props))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        pass


class TokenRotation(Resource, module="agent-perimeter", name="TokenRotation"):
    retiring_epoch: pulumi.Output[int]

    def __init__(
        self, name: str, server: str, epoch: int, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {"server": server, "epoch": epoch, "retiring_epoch": NOT_RETIRING}
        super().__init__(TokenRotationProvider(), name, props, opts)
        # The epoch whose token the server must still accept, or None.
        self.retiring: pulumi.Output[int | None] = self.retiring_epoch.apply(
            lambda value: None if value is None or value < 0 else value
        )
