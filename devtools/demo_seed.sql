-- A realistic legacy database in the guide's proportions (6 organizations, 39 users, 23 agents,
-- 30 voices, 5 numbers, 63 leads, N calls) with the awkward rows production has. Deterministic.
-- Runs with search_path set to the legacy schema; %(calls)s is the number of call logs.

INSERT INTO users_voiceagent (id, user_id, email, organization_id, created_at)
SELECT
    i,
    'usr_' || lpad(i::text, 4, '0'),
    'user' || i || '@example.com',
    CASE
        WHEN i <= 14 THEN '5abb0a93-f59f-48fc-9c5a-2b549b4f8367'::uuid
        WHEN i <= 20 THEN 'a60fac7a-eb17-4964-b4a2-2311db582fc4'::uuid
        WHEN i = 21 THEN 'cd49e5a8-401d-46dc-b216-dd0f2bd8e363'::uuid
        WHEN i = 22 THEN '98e7ff43-33f9-4802-9d40-b9642e38acce'::uuid
        WHEN i = 23 THEN 'f6de7991-df4f-43de-9f40-298fcda5f723'::uuid
        WHEN i <= 36 THEN '3c9e2f4b-7d1a-4e8b-9f6c-5a2d8b1e0f47'::uuid
    END,  -- users 37..39 have no organization
    timestamptz '2024-01-05 09:00:00+01' + i * interval '3 days 5 hours'
FROM generate_series(1, 39) AS i;
SELECT setval('users_voiceagent_id_seq', 39);

INSERT INTO voices_voiceagent (
    id, description, gender, accent, provider, voice_sample_url, provider_voice_id, provider_config
)
SELECT
    md5('voice' || i)::uuid,
    CASE WHEN i = 30 THEN NULL ELSE 'Voice ' || i || ' – ' || (ARRAY['warm', 'crisp', 'calm', 'bright'])[1 + i % 4] END,
    CASE WHEN i % 11 = 0 THEN NULL WHEN i % 2 = 0 THEN 'female' ELSE 'male' END,
    (ARRAY['american', 'british', 'australian', 'indian', NULL])[1 + i % 5],
    CASE WHEN i % 13 = 0 THEN NULL WHEN i % 3 = 0 THEN 'playht' ELSE 'elevenlabs' END,
    'https://samples.example.com/voices/' || i || '.mp3',
    CASE WHEN i IN (29, 30) THEN NULL ELSE 'pv_' || md5('pv' || i) END,
    jsonb_build_object('stability', round(0.3 + (i % 5) / 10.0, 2), 'similarity_boost', 0.75, 'style', i % 3)
FROM generate_series(1, 30) AS i;

INSERT INTO numbers_voiceagent (id, phone_number, provider, type, created_at, status, default_agent)
VALUES
    (1, '+14155550101', 'twilio', 'local', '2024-02-01 10:00:00-08', 'active', 1),
    (2, '+14155550102', 'twilio', 'local', '2024-02-03 10:00:00-08', 'Active', 9),
    (3, '+18005550103', 'telnyx', 'toll_free', '2024-03-01 12:30:00+00', 'ACTIVE ', NULL),
    (4, '+442071838750', NULL, NULL, '2024-04-15 08:00:00+01', 'inactive', 16),
    (5, '+14155550105', 'twilio', 'local', '2024-05-20 16:45:00-07', 'Suspended', 99);
SELECT setval('numbers_voiceagent_id_seq', 5);

-- Agents 1-8 org 5abb, 9-12 org a60f, 13/14/15 the single-user orgs, 16-19 org 3c9e;
-- 20 has a language tag too long for varchar(10); 21 no creator; 22 a deleted creator;
-- 23 a creator without organization.
INSERT INTO agents_voiceagent (
    id, name, gender, agent_instructions, created_by, created_at, default_number, language, voice_id,
    system_instructions, outbound_starter_prompt, inbound_starter_prompt
)
SELECT
    i,
    'Agent ' || (ARRAY['Ava', 'Ben', 'Cleo', 'Dev', 'Eli', 'Fay', 'Gus', 'Hana'])[1 + i % 8] || ' ' || i,
    CASE WHEN i % 2 = 0 THEN 'female' ELSE 'male' END,
    'Qualify the lead politely. Agent ' || i || '.',
    CASE
        WHEN i <= 8 THEN 1 + (i % 14)
        WHEN i <= 12 THEN 15 + (i % 6)
        WHEN i = 13 THEN 21
        WHEN i = 14 THEN 22
        WHEN i = 15 THEN 23
        WHEN i <= 20 THEN 24 + (i % 13)
        WHEN i = 21 THEN NULL
        WHEN i = 22 THEN 999
        ELSE 38
    END,
    timestamptz '2024-03-01 08:00:00-05' + i * interval '1 day 7 hours',
    CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + i % 5 END,
    CASE
        WHEN i = 20 THEN 'en-US-x-callcenter'
        WHEN i % 7 = 0 THEN NULL
        ELSE (ARRAY['en', 'es', 'en-US', 'de', 'fr-CA'])[1 + i % 5]
    END,
    md5('voice' || (1 + i % 30))::uuid,
    'You are a helpful assistant for organization ' || i % 6 || '.',
    'Hi, this is a call about your enquiry.',
    CASE WHEN i % 3 = 0 THEN NULL ELSE 'Thanks for calling, how can I help?' END
FROM generate_series(1, 23) AS i;
SELECT setval('agents_voiceagent_id_seq', 23);

-- Leads 1-24 org 5abb, 25-36 org a60f, 37-40 single-user orgs, 41-58 org 3c9e;
-- 59 no creator; 60 creator without organization; 61/62 repeat the phones of leads 1 and 25 in
-- the same tenant (to merge); 63 has no phone; 57 a blank phone.
INSERT INTO leads_voiceagent (id, name, lead_number, added_by, notes)
SELECT
    i,
    'Lead ' || (ARRAY['Ana', 'Bo', 'Chen', 'Dara', 'Émile', 'Farah', 'Goran'])[1 + i % 7] || ' ' || i,
    CASE
        WHEN i = 61 THEN '+15550100001'
        WHEN i = 62 THEN ' +15550100025'
        WHEN i = 63 THEN NULL
        WHEN i = 57 THEN '   '
        ELSE '+1555010' || lpad(i::text, 4, '0')
    END,
    CASE
        WHEN i <= 24 THEN 1 + (i % 14)
        WHEN i <= 36 THEN 15 + (i % 6)
        WHEN i <= 40 THEN 21 + (i % 3)
        WHEN i <= 58 THEN 24 + (i % 13)
        WHEN i = 59 THEN NULL
        WHEN i = 60 THEN 37
        WHEN i = 61 THEN 2
        WHEN i = 62 THEN 16
        ELSE 5
    END,
    CASE WHEN i % 5 = 0 THEN NULL ELSE 'Interested in plan ' || (ARRAY['basic', 'pro', 'enterprise'])[1 + i % 3] END
FROM generate_series(1, 63) AS i;
SELECT setval('leads_voiceagent_id_seq', 63);

INSERT INTO batch_logs_voiceagent (id) SELECT md5('batch' || b)::uuid FROM generate_series(1, 20) AS b;

-- The primary key is built once the rows are in (at 10M calls one sort is much cheaper than 10M
-- insertions at random places of an index larger than shared_buffers).
ALTER TABLE call_logs_voiceagent DROP CONSTRAINT call_logs_voiceagent_pkey;

-- Calls: mostly an agent and a lead of the caller's organization; in small proportion callers
-- without organization or without user, agents of other tenants or quarantined agents, NULL
-- started_at, target, agent, voice or number, statuses in mixed case and one too long.
-- The shared shape (the setting voice_agent_demo.shape = 'shared', seed_demo(shape="shared")):
-- agents and leads shared between organizations, so that about three calls in four use an agent
-- (3 in 5) or a lead (1 in 3) of another organization. Without it (the clean shape) the calls are
-- the same as without the setting.
WITH users_by_org AS (
    SELECT organization_id, array_agg(id ORDER BY id) AS user_ids
    FROM users_voiceagent WHERE organization_id IS NOT NULL GROUP BY organization_id
),
agents_by_org AS (
    SELECT u.organization_id, array_agg(a.id ORDER BY a.id) AS agent_ids
    FROM agents_voiceagent AS a JOIN users_voiceagent AS u ON a.created_by = u.id
    WHERE a.id <> 20 GROUP BY u.organization_id
),
leads_by_org AS (
    SELECT u.organization_id, array_agg(l.id ORDER BY l.id) AS lead_ids
    FROM leads_voiceagent AS l JOIN users_voiceagent AS u ON l.added_by = u.id
    WHERE u.organization_id IS NOT NULL GROUP BY u.organization_id
),
orgs AS (
    SELECT row_number() OVER (ORDER BY o.organization_id) AS org_no, o.user_ids, a.agent_ids, l.lead_ids
    FROM users_by_org AS o
    JOIN agents_by_org AS a USING (organization_id)
    JOIN leads_by_org AS l USING (organization_id)
),
orgs_and_others AS MATERIALIZED (  -- computed once, not per call
    SELECT
        o.*,
        (SELECT array_agg(x.id ORDER BY x.id) FROM orgs AS p, unnest(p.agent_ids) AS x (id) WHERE p.org_no <> o.org_no)
            AS other_agent_ids,
        (SELECT array_agg(x.id ORDER BY x.id) FROM orgs AS p, unnest(p.lead_ids) AS x (id) WHERE p.org_no <> o.org_no)
            AS other_lead_ids,
        coalesce(current_setting('voice_agent_demo.shape', true), '') = 'shared' AS shared
    FROM orgs AS o
),
calls AS (
    SELECT
        i,
        -- the big organizations make most calls
        (ARRAY[1, 1, 1, 2, 2, 3, 4, 5, 6, 6])[1 + (i * 7) % 10] AS org_no,
        timestamptz '2025-01-01 00:00:00+00' + (i * 86400.0 * 120 / greatest(%(calls)s, 1)) * interval '1 second' AS started
    FROM generate_series(1, %(calls)s) AS i
)
INSERT INTO call_logs_voiceagent (
    id, initiated_by, target, agent, status, call_recording_url, transcriptions, started_at, ended_at,
    call_type, cost, voice, job_id, room_name, from_number_id, added_context, vapi_call_id, vapi_data,
    call_duration, batch_id, cost_breakdown
)
SELECT
    md5('call' || c.i)::uuid,
    CASE
        WHEN c.i % 97 = 0 THEN 37 + c.i % 3
        WHEN c.i % 211 = 0 THEN NULL
        WHEN c.i % 331 = 0 THEN 4242
        ELSE o.user_ids[1 + c.i % cardinality(o.user_ids)]
    END,
    CASE
        WHEN c.i % 41 = 0 THEN NULL
        WHEN c.i % 173 = 0 THEN 60
        WHEN o.shared AND (c.i / 5) % 3 = 0 THEN o.other_lead_ids[1 + (c.i / 3) % cardinality(o.other_lead_ids)]
        ELSE o.lead_ids[1 + c.i % cardinality(o.lead_ids)]
    END,
    CASE
        WHEN c.i % 53 = 0 THEN 1 + (c.i * 3) % 19
        WHEN c.i % 131 = 0 THEN 21 + c.i % 3
        WHEN c.i % 59 = 0 THEN NULL
        WHEN o.shared AND c.i % 5 < 3 THEN o.other_agent_ids[1 + (c.i / 5) % cardinality(o.other_agent_ids)]
        ELSE o.agent_ids[1 + c.i % cardinality(o.agent_ids)]
    END,
    CASE
        WHEN c.i % 397 = 0 THEN 'completed after transfer to a human supervisor who took over the call'
        ELSE (ARRAY['completed', 'Completed', 'COMPLETED', 'failed', 'no-answer', 'busy', 'completed '])[1 + c.i % 7]
    END,
    CASE WHEN c.i % 9 = 0 THEN NULL ELSE 'https://recordings.example.com/' || md5('rec' || c.i) || '.wav' END,
    CASE WHEN c.i % 6 = 0 THEN NULL ELSE jsonb_build_array(
        jsonb_build_object('role', 'assistant', 'text', 'Hello! Am I speaking with the owner?', 't', 0.4),
        jsonb_build_object('role', 'user', 'text', 'Oui, c''est moi – who is calling? 📞', 't', 3.1),
        jsonb_build_object('role', 'assistant', 'text', 'Thanks. I am calling about your enquiry #' || c.i, 't', 5.8)
    ) END,
    CASE WHEN c.i % 89 = 0 THEN NULL ELSE c.started END,
    CASE WHEN c.i % 89 = 0 THEN NULL ELSE c.started + (30 + c.i % 600) * interval '1 second' END,
    CASE WHEN c.i % 4 = 0 THEN 'inbound' ELSE 'outbound' END,
    round((c.i % 997) * 0.0013 + 0.0001, 6),
    CASE WHEN c.i % 37 = 0 THEN NULL ELSE md5('voice' || (1 + c.i % 30))::uuid END,
    'job_' || c.i,
    'room-' || md5('room' || c.i),
    CASE WHEN c.i % 43 = 0 THEN NULL ELSE 1 + c.i % 5 END,
    CASE WHEN c.i % 3 = 0 THEN 'Caller asked about pricing.' END,
    'vapi_' || md5('vapi' || c.i),
    jsonb_build_object('endedReason', 'customer-ended-call', 'model', 'gpt-4o', 'latency_ms', 200 + c.i % 300),
    30 + c.i % 600,
    CASE WHEN c.i % 5 = 0 THEN md5('batch' || (1 + c.i % 20))::uuid END,
    jsonb_build_object('llm', round((c.i % 97) * 0.0007, 6), 'stt', 0.0021, 'tts', round((c.i % 13) * 0.0011, 6))
FROM calls AS c
JOIN orgs_and_others AS o USING (org_no);
ALTER TABLE call_logs_voiceagent ADD CONSTRAINT call_logs_voiceagent_pkey PRIMARY KEY (id);

-- Grants: cross-organization agent use (covering some cross-tenant calls), a voice, a number,
-- and two that cannot migrate (no organization, an organization with no users).
INSERT INTO org_permissions_voiceagent (
    id, organization_id, resource_type, resource_id, access_level, granted_at, granted_by, expires_at, is_active
)
VALUES
    (1, 'a60fac7a-eb17-4964-b4a2-2311db582fc4', 'agent', '1', 'use', '2024-06-01 10:00+02', 'usr_0001', NULL, TRUE),
    (2, '5abb0a93-f59f-48fc-9c5a-2b549b4f8367', 'agent', '9', 'view', '2024-06-02 10:00+02', 'usr_0015', NULL, TRUE),
    (3, '3c9e2f4b-7d1a-4e8b-9f6c-5a2d8b1e0f47', 'Agent', '4', 'admin', '2024-06-03 10:00+02', 'usr_0002', '2026-01-01 00:00+00', TRUE),
    (4, 'cd49e5a8-401d-46dc-b216-dd0f2bd8e363', 'voice', md5('voice7')::uuid::text, 'use', '2024-06-04 10:00+02', 'usr_0021', NULL, TRUE),
    (5, '98e7ff43-33f9-4802-9d40-b9642e38acce', 'number', '3', NULL, '2024-06-05 10:00+02', NULL, NULL, NULL),
    (6, NULL, 'agent', '2', 'use', '2024-06-06 10:00+02', 'usr_0003', NULL, FALSE),
    (7, '11111111-2222-3333-4444-555555555555', 'agent', '3', 'use', '2024-06-07 10:00+02', 'usr_0004', NULL, TRUE);
SELECT setval('org_permissions_voiceagent_id_seq', 7);
