"""A server with an HTTP backend and no database, for the runtime's backend handling:
`python -m tests.servers.ledger_server` under the contract's environment."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from servers.runtime.app import Runtime, ToolCall

AccountId = Annotated[str, Field(pattern=r"^acc_[0-9]{6}$")]
runtime = Runtime("ledger")


@runtime.tool(read_only=True)
async def get_balance(call: ToolCall, account_id: AccountId) -> dict[str, Any]:
    """The account's balance, as the ledger API states it."""
    async with call.http("ledger-api") as api:
        response = await api.get(f"/v1/balances/{account_id}")
        response.raise_for_status()
        return dict(response.json())


if __name__ == "__main__":
    runtime.serve()
