/// The versioned schema. A migration is never edited once released: changes are new versions.
///
/// The contract's tables may already exist, created by the host application with columns of
/// its own, so each migration creates what is missing (`IF NOT EXISTS`) and adds our columns
/// one by one rather than assuming it owns the table.
public enum SchemaMigrations {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public static let all: [Migration] = [
        Migration(
            version: 1, name: "contract tables",
            sql: """
                CREATE TABLE IF NOT EXISTS integrations (
                    id text PRIMARY KEY
                );
                ALTER TABLE integrations
                    ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'bullhorn',
                    ADD COLUMN IF NOT EXISTS client_id text,
                    ADD COLUMN IF NOT EXISTS username text,
                    ADD COLUMN IF NOT EXISTS auth_url text,
                    ADD COLUMN IF NOT EXISTS rest_url text,
                    ADD COLUMN IF NOT EXISTS login_info_url text,
                    ADD COLUMN IF NOT EXISTS sealed_secrets bytea,
                    ADD COLUMN IF NOT EXISTS calls_per_minute integer NOT NULL DEFAULT 1200
                        CHECK (calls_per_minute > 0),
                    ADD COLUMN IF NOT EXISTS tearsheets_last_synced_at timestamptz NULL,
                    ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true,
                    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
                    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();

                CREATE TABLE IF NOT EXISTS campaigns (
                    id bigint PRIMARY KEY,
                    integration_id text NOT NULL REFERENCES integrations (id),
                    ats_job_id bigint NOT NULL,
                    active boolean NOT NULL DEFAULT true
                );
                ALTER TABLE campaigns
                    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
                CREATE INDEX IF NOT EXISTS campaigns_active_by_job
                    ON campaigns (integration_id, ats_job_id) WHERE active;

                CREATE TABLE IF NOT EXISTS candidates (
                    integration_id text NOT NULL,
                    ats_candidate_id bigint NOT NULL,
                    PRIMARY KEY (integration_id, ats_candidate_id)
                );
                ALTER TABLE candidates
                    ADD COLUMN IF NOT EXISTS first_name text,
                    ADD COLUMN IF NOT EXISTS last_name text,
                    ADD COLUMN IF NOT EXISTS name text,
                    ADD COLUMN IF NOT EXISTS email text,
                    ADD COLUMN IF NOT EXISTS phone text,
                    ADD COLUMN IF NOT EXISTS mobile text,
                    ADD COLUMN IF NOT EXISTS personal_url text,
                    ADD COLUMN IF NOT EXISTS city text,
                    ADD COLUMN IF NOT EXISTS state text,
                    ADD COLUMN IF NOT EXISTS zip text,
                    ADD COLUMN IF NOT EXISTS country_id integer,
                    ADD COLUMN IF NOT EXISTS occupation text,
                    ADD COLUMN IF NOT EXISTS company_name text,
                    ADD COLUMN IF NOT EXISTS status text,
                    ADD COLUMN IF NOT EXISTS owner_id bigint,
                    ADD COLUMN IF NOT EXISTS owner_name text,
                    ADD COLUMN IF NOT EXISTS is_deleted boolean NOT NULL DEFAULT false,
                    ADD COLUMN IF NOT EXISTS ats_date_last_modified timestamptz,
                    ADD COLUMN IF NOT EXISTS indexed_at timestamptz;
                ALTER TABLE candidates ADD COLUMN IF NOT EXISTS search tsvector
                    GENERATED ALWAYS AS (to_tsvector('simple',
                        coalesce(name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(occupation, '') || ' ' ||
                        coalesce(company_name, '') || ' ' || coalesce(city, '') || ' ' || coalesce(state, ''))) STORED;
                CREATE INDEX IF NOT EXISTS candidates_search ON candidates USING gin (search);

                CREATE TABLE IF NOT EXISTS campaign_candidates (
                    campaign_id bigint NOT NULL,
                    ats_candidate_id bigint NOT NULL,
                    integration_id text NOT NULL,
                    source text NOT NULL,
                    ats_application_id bigint NULL,
                    added_at timestamptz NOT NULL,
                    PRIMARY KEY (campaign_id, ats_candidate_id)
                );
                """),
        Migration(
            version: 2, name: "publisher marks",
            sql: """
                -- What the publisher already handled inside the overlap window before the
                -- watermark: a re-read of an unchanged tearsheet or member publishes nothing.
                CREATE TABLE IF NOT EXISTS publisher_marks (
                    integration_id text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
                    kind text NOT NULL CHECK (kind IN ('tearsheet', 'member')),
                    entity_id bigint NOT NULL,
                    version timestamptz NOT NULL,
                    PRIMARY KEY (integration_id, kind, entity_id)
                );
                """),
        Migration(
            version: 3, name: "job submission intents",
            sql: """
                -- Written before a JobSubmission is created in Bullhorn and completed after: a
                -- pending row left by a crash makes the next attempt look in Bullhorn first.
                CREATE TABLE IF NOT EXISTS job_submission_intents (
                    integration_id text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
                    ats_candidate_id bigint NOT NULL,
                    ats_job_id bigint NOT NULL,
                    ats_application_id bigint NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    completed_at timestamptz NULL,
                    PRIMARY KEY (integration_id, ats_candidate_id, ats_job_id)
                );
                """),
        Migration(
            version: 4, name: "worker heartbeats",
            sql: """
                -- Live workers, for the fair share of partitions each one takes. Partition leases
                -- themselves are session advisory locks: they die with the worker's connection.
                CREATE TABLE IF NOT EXISTS worker_heartbeats (
                    worker_id text PRIMARY KEY,
                    host text NOT NULL,
                    started_at timestamptz NOT NULL DEFAULT now(),
                    last_seen timestamptz NOT NULL DEFAULT now(),
                    partitions integer[] NOT NULL DEFAULT '{}'
                );
                """),
        Migration(
            version: 5, name: "sessions",
            sql: """
                -- Which sessions (integrations) have work: the publisher (and dlq replay) bumps
                -- published_seq after the broker confirmed messages for the session; a worker
                -- that found the session's queue empty records the sequence it had read before
                -- looking, so a publish it did not see keeps the session waiting. Workers
                -- take waiting sessions oldest first.
                CREATE TABLE IF NOT EXISTS session_work (
                    integration_id text PRIMARY KEY,
                    published_seq bigint NOT NULL DEFAULT 0,
                    drained_seq bigint NOT NULL DEFAULT 0,
                    waiting_since timestamptz NULL
                );
                CREATE INDEX IF NOT EXISTS session_work_waiting ON session_work (waiting_since)
                    WHERE published_seq > drained_seq;
                ALTER TABLE worker_heartbeats ADD COLUMN IF NOT EXISTS sessions text[] NOT NULL DEFAULT '{}';
                ALTER TABLE worker_heartbeats DROP COLUMN IF EXISTS partitions;
                """),
        Migration(
            version: 6, name: "uncertain job submission writes",
            sql: """
                -- When a creation's outcome was unknown (a timeout: Bullhorn may still apply it):
                -- no second creation until the grace has passed, however often the search finds
                -- nothing meanwhile.
                ALTER TABLE job_submission_intents ADD COLUMN IF NOT EXISTS uncertain_since timestamptz NULL;
                """),
        Migration(
            version: 7, name: "last publish pass",
            sql: """
                -- When each integration's last pass ended and how, for `trace` (the watermark only
                -- says how far the last good one got).
                ALTER TABLE integrations
                    ADD COLUMN IF NOT EXISTS last_pass_at timestamptz NULL,
                    ADD COLUMN IF NOT EXISTS last_pass_outcome text NULL;
                """),
        Migration(
            version: 8, name: "fleet-wide Bullhorn budget",
            sql: """
                -- Bullhorn's call limit is the corporation's: integrations of one corporation
                -- (NULL: the integration is its own) share one token bucket, leased by every
                -- process that calls Bullhorn (see FleetTokenSource).
                ALTER TABLE integrations ADD COLUMN IF NOT EXISTS corporation text NULL;
                CREATE TABLE IF NOT EXISTS bullhorn_budgets (
                    budget_key text PRIMARY KEY,
                    tokens float8 NOT NULL,
                    refilled_at timestamptz NOT NULL
                );
                """),
        Migration(
            version: 9, name: "publisher marks in one row",
            sql: """
                -- An integration's marks in one row of arrays, not a row each: a pass that read
                -- 10,000 members added inside the overlap window wrote 10,000 rows with their
                -- foreign key checks (about 70 ms of the pass), and each pass inside the window
                -- wrote them again (90 ms, and as many dead rows); one row of arrays takes 9 ms.
                CREATE TABLE IF NOT EXISTS publisher_mark_sets (
                    integration_id text PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
                    tearsheet_ids bigint[] NOT NULL,
                    tearsheet_versions timestamptz[] NOT NULL,
                    member_ids bigint[] NOT NULL,
                    member_versions timestamptz[] NOT NULL,
                    CHECK (cardinality(tearsheet_ids) = cardinality(tearsheet_versions)),
                    CHECK (cardinality(member_ids) = cardinality(member_versions))
                );
                -- The marks already kept come along: an upgrade must not republish the window.
                INSERT INTO publisher_mark_sets (integration_id, tearsheet_ids, tearsheet_versions, member_ids, member_versions)
                SELECT integration_id,
                       coalesce(array_agg(entity_id ORDER BY entity_id) FILTER (WHERE kind = 'tearsheet'), '{}'),
                       coalesce(array_agg(version ORDER BY entity_id) FILTER (WHERE kind = 'tearsheet'), '{}'),
                       coalesce(array_agg(entity_id ORDER BY entity_id) FILTER (WHERE kind = 'member'), '{}'),
                       coalesce(array_agg(version ORDER BY entity_id) FILTER (WHERE kind = 'member'), '{}')
                  FROM publisher_marks GROUP BY integration_id
                ON CONFLICT (integration_id) DO NOTHING;
                DROP TABLE publisher_marks;
                """),
        Migration(
            version: 10, name: "shared Bullhorn sessions",
            sql: """
                -- Each integration's Bullhorn REST session and refresh token, sealed, shared by every
                -- process of the fleet (see FleetBullhornSessions): Bullhorn counts a corporation's
                -- concurrent sessions (about 50), and a process each, a pass each, approached it.
                -- A login Bullhorn refused for good (credentials, the session limit) pauses the
                -- fleet's next ones for this integration, longer with each refusal in a row. The
                -- process renewing holds the lease (renewal_lease until renewing_until), not a
                -- lock on a connection: a login takes seconds.
                CREATE TABLE IF NOT EXISTS bullhorn_sessions (
                    integration_id text PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
                    generation bigint NOT NULL DEFAULT 0,
                    sealed bytea NULL,
                    established_at timestamptz NULL,
                    refusals integer NOT NULL DEFAULT 0,
                    refused_at timestamptz NULL,
                    refusal text NULL,
                    renewal_lease text NULL,
                    renewing_until timestamptz NULL,
                    revision bigint NOT NULL DEFAULT 0
                );
                """),
    ]
}
