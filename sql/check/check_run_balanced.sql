-- Passes when this run's account balances per legacy table and tenant: in scope = inserted + updated
-- + unchanged + rejected, none negative (pending rows, written after a step took its table, are
-- beyond its scope), and every write the upserts counted is accounted for (a write
-- under a tenant that has no rows in scope would leave the totals short).
{% import "_common.sql" as c with context %}
WITH account AS (
    SELECT
        source_table,
        sum(inserted + updated) AS accounted_writes,
        bool_and(
            inserted >= 0 AND updated >= 0 AND unchanged >= 0 AND rejected >= 0
            AND in_scope = inserted + updated + unchanged + rejected
        ) AS balanced,
        string_agg(
            format(
                '%s tenant %s: in_scope=%s inserted=%s updated=%s unchanged=%s rejected=%s pending=%s',
                source_table, coalesce(tenant_id::text, '(none)'), in_scope, inserted, updated, unchanged, rejected,
                pending
            ),
            '; ' ORDER BY tenant_id
        ) FILTER (WHERE unchanged < 0 OR in_scope <> inserted + updated + unchanged + rejected) AS unbalanced
    FROM {{ c.tgt }}.migration_run_tables
    WHERE run_id = {{ c.run }}
    GROUP BY source_table
),

writes AS (
    SELECT
        source_table,
        sum(inserted + updated) AS counted_writes
    FROM {{ c.tgt }}.migration_run_writes
    WHERE run_id = {{ c.run }}
    GROUP BY source_table
)

-- A legacy table with no rows has no account; writes counted for a table without one still show.
SELECT
    coalesce(
        bool_and(coalesce(a.balanced, FALSE) AND coalesce(a.accounted_writes, 0) = coalesce(w.counted_writes, 0)),
        TRUE
    ) AS balanced,
    coalesce(
        string_agg(
            concat_ws(
                ' ', a.unbalanced,
                CASE
                    WHEN coalesce(a.accounted_writes, 0) <> coalesce(w.counted_writes, 0)
                        THEN format(
                            '%s: %s writes counted, %s accounted',
                            coalesce(a.source_table, w.source_table), coalesce(w.counted_writes, 0),
                            coalesce(a.accounted_writes, 0)
                        )
                END
            ),
            '; '
        ) FILTER (
            WHERE NOT coalesce(a.balanced, FALSE) OR coalesce(a.accounted_writes, 0) <> coalesce(w.counted_writes, 0)
        ),
        format('%s legacy tables balance per tenant', count(a.source_table))
    ) AS detail
FROM account AS a
FULL JOIN writes AS w ON a.source_table = w.source_table
