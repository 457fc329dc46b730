-- The legacy voice_agent schema as the mapping guide describes it (no foreign keys, as in production).
-- Runs with search_path set to the legacy schema.
CREATE TABLE users_voiceagent (
    id serial PRIMARY KEY,
    user_id varchar(255) NOT NULL,
    email text,
    organization_id uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE voices_voiceagent (
    id uuid PRIMARY KEY,
    description text,
    gender text,
    accent text,
    provider text,
    voice_sample_url text,
    provider_voice_id text,
    provider_config jsonb
);

CREATE TABLE numbers_voiceagent (
    id bigserial PRIMARY KEY,
    phone_number text,
    provider text,
    type text,
    created_at timestamptz DEFAULT now(),
    status text,
    default_agent bigint
);

CREATE TABLE agents_voiceagent (
    id bigserial PRIMARY KEY,
    name text,
    gender text,
    agent_instructions text,
    created_by integer,
    created_at timestamptz DEFAULT now(),
    default_number bigint,
    language text DEFAULT 'en',
    voice_id uuid,
    system_instructions text,
    outbound_starter_prompt text,
    inbound_starter_prompt text
);

CREATE TABLE leads_voiceagent (
    id bigserial PRIMARY KEY,
    name text,
    lead_number text,
    added_by integer,
    notes text
);

CREATE TABLE batch_logs_voiceagent (
    id uuid PRIMARY KEY,
    created_at timestamptz DEFAULT now()
);

CREATE TABLE call_logs_voiceagent (
    id uuid PRIMARY KEY,
    initiated_by integer,
    target bigint,
    agent bigint,
    status text,
    call_recording_url text,
    transcriptions jsonb,
    started_at timestamptz,
    ended_at timestamptz,
    call_type text,
    cost numeric,
    voice uuid,
    job_id varchar(255),
    room_name varchar(255),
    from_number_id bigint,
    added_context text,
    vapi_call_id varchar(255),
    vapi_data jsonb,
    call_duration numeric,
    batch_id uuid,
    cost_breakdown jsonb
);

CREATE TABLE org_permissions_voiceagent (
    id bigserial PRIMARY KEY,
    organization_id uuid,
    resource_type text,
    resource_id text,
    access_level text,
    granted_at timestamptz DEFAULT now(),
    granted_by text,
    expires_at timestamptz,
    is_active boolean DEFAULT TRUE
);
