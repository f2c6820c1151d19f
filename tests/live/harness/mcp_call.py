"""One MCP tool call from inside a pod, with the official client: what the tunnel's proxy does
when the platform calls a tool. Runs in the export server's image (its `mcp` SDK), mounted
from a ConfigMap; standard library and the SDK only.

Reads MCP_CALL_URL, MCP_CALL_TOOL, MCP_CALL_ARGUMENTS and MCP_CALL_META (JSON) from the
environment, the bearer from /call/token and the CA from /call/ca.crt. Prints one JSON line:
{"is_error": bool, "text": ...} and exits 0, or {"failed": reason} and exits 3.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

TIMEOUT_SECONDS = 10


async def call() -> dict[str, object]:
    context = ssl.create_default_context(cafile="/call/ca.crt")
    with open("/call/token") as token:
        bearer = token.read().strip()
    async with (
        httpx2.AsyncClient(
            verify=context,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=httpx2.Timeout(TIMEOUT_SECONDS),
        ) as http,
        Client(streamable_http_client(os.environ["MCP_CALL_URL"], http_client=http)) as client,
    ):
        result = await client.call_tool(
            os.environ["MCP_CALL_TOOL"],
            json.loads(os.environ["MCP_CALL_ARGUMENTS"]),
            meta=json.loads(os.environ["MCP_CALL_META"]),
        )
    text = "".join(getattr(part, "text", "") for part in result.content)
    return {"is_error": bool(result.is_error), "text": text}


def main() -> int:
    try:
        print(json.dumps(asyncio.run(asyncio.wait_for(call(), TIMEOUT_SECONDS * 2))))
        return 0
    except Exception as error:  # transport failures arrive wrapped in groups
        reason: BaseException = error
        while isinstance(reason, BaseExceptionGroup) and reason.exceptions:
            reason = reason.exceptions[0]
        print(json.dumps({"failed": f"{type(reason).__name__}: {reason}"[:300]}))
        return 3


if __name__ == "__main__":
    sys.exit(main())
