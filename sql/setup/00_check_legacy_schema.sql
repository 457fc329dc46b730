-- Refuses to start, naming what is missing, when the legacy schema lacks a table or column the
-- mapping reads, or when an existing target table cannot hold the mapping. Writes nothing.
{% import "_common.sql" as c with context %}
DO $$
DECLARE
    problems text;
BEGIN
    SELECT string_agg(format('%s.%s.%s', req.table_schema, req.table_name, req.column_name), ', '
        ORDER BY req.table_name, req.column_name)
    INTO problems
    FROM (
        SELECT {{ params.source_schema | sql_literal }} AS table_schema, wanted.table_name, wanted.column_name
        FROM (VALUES
            ('users_voiceagent', 'id'), ('users_voiceagent', 'user_id'),
            ('users_voiceagent', 'organization_id'), ('users_voiceagent', 'created_at'),
            ('voices_voiceagent', 'id'), ('voices_voiceagent', 'description'),
            ('voices_voiceagent', 'gender'), ('voices_voiceagent', 'accent'),
            ('voices_voiceagent', 'provider'), ('voices_voiceagent', 'voice_sample_url'),
            ('voices_voiceagent', 'provider_voice_id'), ('voices_voiceagent', 'provider_config'),
            ('numbers_voiceagent', 'id'), ('numbers_voiceagent', 'phone_number'),
            ('numbers_voiceagent', 'provider'), ('numbers_voiceagent', 'type'),
            ('numbers_voiceagent', 'created_at'), ('numbers_voiceagent', 'status'),
            ('numbers_voiceagent', 'default_agent'),
            ('agents_voiceagent', 'id'), ('agents_voiceagent', 'name'), ('agents_voiceagent', 'gender'),
            ('agents_voiceagent', 'agent_instructions'), ('agents_voiceagent', 'created_by'),
            ('agents_voiceagent', 'created_at'), ('agents_voiceagent', 'default_number'),
            ('agents_voiceagent', 'language'), ('agents_voiceagent', 'voice_id'),
            ('agents_voiceagent', 'system_instructions'), ('agents_voiceagent', 'outbound_starter_prompt'),
            ('agents_voiceagent', 'inbound_starter_prompt'),
            ('leads_voiceagent', 'id'), ('leads_voiceagent', 'name'), ('leads_voiceagent', 'lead_number'),
            ('leads_voiceagent', 'added_by'), ('leads_voiceagent', 'notes'),
            ('call_logs_voiceagent', 'id'), ('call_logs_voiceagent', 'initiated_by'),
            ('call_logs_voiceagent', 'target'), ('call_logs_voiceagent', 'agent'),
            ('call_logs_voiceagent', 'status'), ('call_logs_voiceagent', 'call_recording_url'),
            ('call_logs_voiceagent', 'transcriptions'), ('call_logs_voiceagent', 'started_at'),
            ('call_logs_voiceagent', 'ended_at'), ('call_logs_voiceagent', 'call_type'),
            ('call_logs_voiceagent', 'cost'), ('call_logs_voiceagent', 'voice'),
            ('call_logs_voiceagent', 'job_id'), ('call_logs_voiceagent', 'room_name'),
            ('call_logs_voiceagent', 'from_number_id'), ('call_logs_voiceagent', 'added_context'),
            ('call_logs_voiceagent', 'vapi_call_id'), ('call_logs_voiceagent', 'vapi_data'),
            ('call_logs_voiceagent', 'call_duration'), ('call_logs_voiceagent', 'batch_id'),
            ('call_logs_voiceagent', 'cost_breakdown'),
            ('org_permissions_voiceagent', 'id'), ('org_permissions_voiceagent', 'organization_id'),
            ('org_permissions_voiceagent', 'resource_type'), ('org_permissions_voiceagent', 'resource_id'),
            ('org_permissions_voiceagent', 'access_level'), ('org_permissions_voiceagent', 'granted_at'),
            ('org_permissions_voiceagent', 'granted_by'), ('org_permissions_voiceagent', 'expires_at'),
            ('org_permissions_voiceagent', 'is_active')
        ) AS wanted (table_name, column_name)
    ) AS req
    WHERE NOT EXISTS (
        SELECT 1 FROM information_schema.columns AS col
        WHERE col.table_schema = req.table_schema
            AND col.table_name = req.table_name
            AND col.column_name = req.column_name
    );
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION 'legacy schema is missing: %', problems
            USING HINT = 'check the source_schema param and the voice_agent_db connection';
    END IF;

    -- voice_calls.lead_id is a uuid: an existing main leads table must be keyed by uuid.
    SELECT format('%s.leads.id is %s, expected uuid', col.table_schema, col.data_type)
    INTO problems
    FROM information_schema.columns AS col
    WHERE col.table_schema = {{ params.target_schema | sql_literal }}
        AND col.table_name = 'leads'
        AND col.column_name = 'id'
        AND col.data_type <> 'uuid';
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION 'target table cannot hold the mapping: %', problems;
    END IF;
END
$$;
