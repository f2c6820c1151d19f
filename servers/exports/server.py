"""The walkthrough's export server: three tools, each on its own role, each bound to the tenant.

- `get_latest_export_job` reads (its role: SELECT on the job columns it shows);
- `retry_export_job` enqueues a retry of a failed job, idempotently (its role: INSERT on the
  queue, SELECT on the few job columns it checks);
- `get_export_download_url` signs a short-lived link to a completed job's file with the export
  store's key (the backend credential `export-store`, mounted as a file).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from pydantic import Field

from servers.runtime.app import Runtime, ToolCall, ToolFailure

CUSTOMER_ID = r"^cus_[A-Za-z0-9]{12}$"
JOB_ID = r"^exp_[A-Za-z0-9]{12}$"
STORE = "export-store"
LINK_SECONDS = 900

CustomerId = Annotated[
    str,
    Field(
        pattern=CUSTOMER_ID,
        min_length=16,
        max_length=16,
        description="cus_ and 12 letters or digits",
    ),
]
JobId = Annotated[
    str,
    Field(
        pattern=JOB_ID, min_length=16, max_length=16, description="exp_ and 12 letters or digits"
    ),
]

runtime = Runtime("exports", instructions="Export jobs of the caller's customers.")


def _job(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in row.items()
    }


@runtime.tool(database=True, tenant=True, read_only=True)
async def get_latest_export_job(call: ToolCall, customer_id: CustomerId) -> dict[str, Any]:
    """The customer's most recent export job: its id, status, attempt and failure, if any."""
    row = await call.db.fetch_one(
        "SELECT id, customer_id, status, attempt, created_at, finished_at, failure"
        " FROM exports.jobs WHERE customer_id = %s ORDER BY created_at DESC, id DESC LIMIT 1",
        (customer_id,),
    )
    if row is None:
        return {"found": False, "customer_id": customer_id}
    return {"found": True, "job": _job(row)}


@runtime.tool(database=True, tenant=True)
async def retry_export_job(
    call: ToolCall, customer_id: CustomerId, job_id: JobId
) -> dict[str, Any]:
    """Queue a retry of the customer's failed export job; a second retry of the same attempt
    queues nothing new."""
    job = await call.db.fetch_one(
        "SELECT status, attempt FROM exports.jobs WHERE id = %s AND customer_id = %s",
        (job_id, customer_id),
    )
    if job is None:
        return {"queued": False, "reason": f"no export job {job_id} for {customer_id}"}
    if job["status"] != "failed":
        return {"queued": False, "reason": f"job {job_id} is {job['status']}, not failed"}
    inserted = await call.db.execute(
        "INSERT INTO exports.retry_queue (tenant_id, job_id, attempt) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",  # a conflict target would need SELECT on its columns
        (call.tenant, job_id, job["attempt"]),
    )
    if inserted == 0:
        return {"queued": False, "reason": f"a retry of attempt {job['attempt']} is already queued"}
    return {"queued": True, "job_id": job_id, "attempt": job["attempt"]}


@runtime.tool(database=True, tenant=True, read_only=True)
async def get_export_download_url(
    call: ToolCall, customer_id: CustomerId, job_id: JobId
) -> dict[str, Any]:
    """A link to the completed job's file, valid for 15 minutes."""
    job = await call.db.fetch_one(
        "SELECT status, object_key FROM exports.jobs WHERE id = %s AND customer_id = %s",
        (job_id, customer_id),
    )
    if job is None:
        return {"url": None, "reason": f"no export job {job_id} for {customer_id}"}
    if job["status"] != "completed" or not job["object_key"]:
        return {"url": None, "reason": f"job {job_id} is {job['status']}, not completed"}
    store = call.backend(STORE)
    try:
        key = store.credential().encode()
    except OSError as error:
        raise ToolFailure(f"the {STORE} signing key is unreadable ({error.strerror})") from None
    expires = int(time.time()) + LINK_SECONDS
    path = "/" + quote(job["object_key"])
    signature = hmac.new(key, f"GET\n{path}\n{expires}".encode(), hashlib.sha256).hexdigest()
    query = urlencode({"expires": expires, "signature": signature})
    return {"url": f"{store.base_url}{path}?{query}", "expires_at": expires}
