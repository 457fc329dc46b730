-- The main application's tables as they exist before the migration, with rows of their own:
-- a leads table without tenant_id and a company_search_cache (no employees_cache).
-- %(schema)s is the schema they live in (public in the demo); devtools/legacy_db.py and the
-- docker-compose seed script (docker/voice-agent-db/initdb/10-seed-demo.sh) substitute it.

CREATE TABLE "%(schema)s".leads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    phone text,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO "%(schema)s".leads (id, name, phone) VALUES
    ('7d0c2a4e-0000-4000-8000-000000000001', 'Main-app lead Zoë', '+15550100001'),
    ('7d0c2a4e-0000-4000-8000-000000000002', 'Main-app lead Omar', NULL);
CREATE TABLE "%(schema)s".company_search_cache (
    id serial PRIMARY KEY,
    query text NOT NULL,
    results jsonb,
    created_at timestamptz DEFAULT now()
);
INSERT INTO "%(schema)s".company_search_cache (query, results) VALUES
    ('acme', '{"hits": 3}'), ('globex', '{"hits": 0}');
