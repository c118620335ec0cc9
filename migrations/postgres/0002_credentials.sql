-- API credentials of relying parties, auditors and admins. Secrets are kept only as Argon2id
-- hashes (PHC strings). Credentials are configuration, not events: they are managed with the CLI.
create table credentials (
    id text primary key,
    name text not null,
    role text not null check (role in ('client', 'auditor', 'admin')),
    secret_hash text not null,
    actions text not null default '[]',
    created_at text not null,
    revoked_at text
);
