-- Findings by kind, with the share a resource_permissions grant covers and a few call ids.
{% import "_common.sql" as c with context %}
SELECT
    kind,
    count(*)::integer AS calls,
    (count(*) FILTER (WHERE covered_by_grant))::integer AS covered_by_grant,
    array_to_string((array_agg(source_id ORDER BY source_id))[1:3], ' ') AS example_call_ids
FROM {{ c.tgt }}.migration_findings
GROUP BY kind
ORDER BY kind
