-- Two tenants' export jobs, for the tests and a local try-out.
INSERT INTO exports.jobs (id, tenant_id, customer_id, status, attempt, created_at, finished_at, failure, object_key) VALUES
    ('exp_A00000000001', 'acme', 'cus_AAAAAAAAAAA1', 'completed', 1, '2026-11-30 09:00+00', '2026-11-30 09:04+00', NULL, 'acme/cus_AAAAAAAAAAA1/exp_A00000000001.csv'),
    ('exp_A00000000002', 'acme', 'cus_AAAAAAAAAAA1', 'failed', 1, '2026-12-01 09:00+00', '2026-12-01 09:02+00', 'warehouse timeout', NULL),
    ('exp_A00000000003', 'acme', 'cus_AAAAAAAAAAA2', 'queued', 1, '2026-12-01 10:00+00', NULL, NULL, NULL),
    ('exp_G00000000001', 'globex', 'cus_GGGGGGGGGGG1', 'failed', 2, '2026-12-01 11:00+00', '2026-12-01 11:01+00', 'disk full', NULL),
    ('exp_G00000000002', 'globex', 'cus_GGGGGGGGGGG1', 'completed', 1, '2026-11-29 08:00+00', '2026-11-29 08:03+00', NULL, 'globex/cus_GGGGGGGGGGG1/exp_G00000000002.csv');
