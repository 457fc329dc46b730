#!/usr/bin/env bash
# Seeds the voice-agent-db container with the demo legacy database on its first start (the postgres
# image runs /docker-entrypoint-initdb.d/* only while the data directory is empty).
#
# Does what devtools/legacy_db.py::build_demo_database does, from the same SQL files (mounted
# read-only from the repository's devtools/ at $VOICE_AGENT_SEED_DIR):
#   1. CREATE SCHEMA voice_agent, then legacy_schema.sql with search_path = voice_agent;
#   2. demo_seed.sql with search_path = voice_agent, its %(calls)s placeholder replaced by
#      $VOICE_AGENT_DEMO_CALLS (default 742), then ANALYZE voice_agent.call_logs_voiceagent;
#   3. application_tables.sql with its %(schema)s placeholder replaced by public.
# All of it runs in one transaction: a failure leaves no half-seeded database behind.
#
# The postgres image may source this file instead of executing it: no `exit`, no `set -u`.
set -Eeo pipefail

seed_dir="${VOICE_AGENT_SEED_DIR:-/seed}"
calls="${VOICE_AGENT_DEMO_CALLS:-742}"
if ! [[ "$calls" =~ ^[0-9]+$ ]]; then
    echo "10-seed-demo.sh: VOICE_AGENT_DEMO_CALLS must be a non-negative integer, got '$calls'" >&2
    false
fi
for file in legacy_schema.sql demo_seed.sql application_tables.sql; do
    if [[ ! -r "$seed_dir/$file" ]]; then
        echo "10-seed-demo.sh: $seed_dir/$file not found (is ./devtools mounted at $seed_dir?)" >&2
        false
    fi
done

echo "10-seed-demo.sh: seeding the demo legacy database ($calls call logs) from $seed_dir"
{
    echo 'CREATE SCHEMA "voice_agent";'
    echo 'SET search_path = "voice_agent";'
    cat "$seed_dir/legacy_schema.sql"
    echo
    echo 'RESET search_path;'
    echo 'SET search_path = "voice_agent";'
    sed "s/%(calls)s/$calls/g" "$seed_dir/demo_seed.sql"
    echo
    echo 'RESET search_path;'
    echo 'ANALYZE "voice_agent".call_logs_voiceagent;'
    sed 's/%(schema)s/public/g' "$seed_dir/application_tables.sql"
} | PGCLIENTENCODING=UTF8 psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --output=/dev/null \
    --single-transaction --file=- \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
echo "10-seed-demo.sh: done"
