-- The export service's tables, as the walkthrough's server sees them. Owned by the database
-- admin (the role provisioner grants each tool's role its slice); applied by the tests and by
-- a team's own migrations, never by the perimeter.
CREATE SCHEMA exports;

CREATE TABLE exports.jobs (
    id text PRIMARY KEY CHECK (id ~ '^exp_[A-Za-z0-9]{12}$'),
    tenant_id text NOT NULL,
    customer_id text NOT NULL CHECK (customer_id ~ '^cus_[A-Za-z0-9]{12}$'),
    status text NOT NULL CHECK (status IN ('queued', 'running', 'failed', 'completed')),
    attempt integer NOT NULL DEFAULT 1 CHECK (attempt > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    failure text,
    -- The completed file's key in the export store; what a download link points at.
    object_key text
);
CREATE INDEX jobs_customer_created ON exports.jobs (tenant_id, customer_id, created_at DESC);

-- One row per retry of one attempt: a second retry of the same failed attempt conflicts on
-- the key and queues nothing (INSERT ... ON CONFLICT DO NOTHING, with no conflict target,
-- needs only INSERT).
CREATE TABLE exports.retry_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL,
    job_id text NOT NULL REFERENCES exports.jobs (id),
    attempt integer NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, attempt)
);
