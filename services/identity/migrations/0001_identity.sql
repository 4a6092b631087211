-- Identity: organisations, professionals, role profiles, service accounts,
-- sessions, refresh tokens and token signing keys.

CREATE TABLE organisations (
    code              text PRIMARY KEY,
    name              text        NOT NULL,
    organisation_type integer     NOT NULL,
    -- mcr.identity.v1.DataProtectionContact as JSON (serde form of the domain type).
    dp_contact        jsonb       NOT NULL,
    active            boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                    uuid PRIMARY KEY,
    username              text        NOT NULL UNIQUE,
    name                  jsonb       NOT NULL,
    email                 text        NOT NULL DEFAULT '',
    registrations         jsonb       NOT NULL DEFAULT '[]',
    status                text        NOT NULL CHECK (status IN ('active', 'suspended')),
    -- argon2id PHC string; never leaves this service.
    password_hash         text        NOT NULL,
    failed_attempts       integer     NOT NULL DEFAULT 0,
    locked_until          timestamptz,
    last_authenticated_at timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- "issuer|subject" of an external OpenID Connect identity mapped to a user.
CREATE TABLE external_subjects (
    external_subject text PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id)
);
CREATE INDEX external_subjects_user ON external_subjects (user_id);

CREATE TABLE role_profiles (
    id                uuid PRIMARY KEY,
    user_id           uuid        NOT NULL REFERENCES users (id),
    organisation_code text        NOT NULL REFERENCES organisations (code),
    role              integer     NOT NULL,
    role_code         text        NOT NULL,
    job_title         text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    removed_at        timestamptz
);
CREATE INDEX role_profiles_user ON role_profiles (user_id);
CREATE UNIQUE INDEX role_profiles_one_active
    ON role_profiles (user_id, organisation_code, role) WHERE removed_at IS NULL;

CREATE TABLE service_accounts (
    client_id         text PRIMARY KEY,
    name              text        NOT NULL UNIQUE,
    organisation_code text        NOT NULL REFERENCES organisations (code),
    allowed_scopes    text[]      NOT NULL,
    secret_hash       text        NOT NULL,
    active            boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    user_id         uuid        NOT NULL REFERENCES users (id),
    role_profile_id uuid        NOT NULL REFERENCES role_profiles (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  integer
);
CREATE INDEX sessions_active_by_user ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_active_by_profile ON sessions (role_profile_id) WHERE revoked_at IS NULL;

-- Only the SHA-256 of a refresh token is kept; used_at marks rotation, and a
-- second use of the same token is reuse.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES sessions (id),
    issued_at  timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Signing keys: published from created_at, signing from activated_at,
-- published until retired_at + the access-token lifetime.
CREATE TABLE signing_keys (
    kid           text PRIMARY KEY,
    private_pkcs8 bytea       NOT NULL,
    public_key    bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    retired_at    timestamptz
);
