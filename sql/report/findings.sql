-- Findings by kind, with the share a resource_permissions grant covers and a few ids: the calls' from
-- their summary (call by call: the view migration_call_findings), the steps' own (a lead the
-- application took over) from migration_findings.
{% import "_common.sql" as c with context %}
WITH findings AS (
    SELECT
        s.kind,
        s.calls,
        s.covered_by_grant,
        s.example_call_ids AS example_ids
    FROM {{ c.tgt }}.migration_call_findings_summary AS s
    UNION ALL
    SELECT
        f.kind,
        1 AS calls,
        f.covered_by_grant,
        ARRAY[f.source_id] AS example_ids
    FROM {{ c.tgt }}.migration_findings AS f
)

SELECT
    f.kind,
    sum(f.calls)::integer AS calls,
    coalesce(sum(f.calls) FILTER (WHERE f.covered_by_grant), 0)::integer AS covered_by_grant,
    (
        SELECT array_to_string((array_agg(example.id ORDER BY example.id))[1:3], ' ')
        FROM findings AS same_kind
        CROSS JOIN LATERAL unnest(same_kind.example_ids) AS example (id)
        WHERE same_kind.kind = f.kind
    ) AS example_call_ids
FROM findings AS f
GROUP BY f.kind
ORDER BY f.kind
