-- Inline read models, updated in the same transaction as the append that changes them.
-- `view` is the aggregate's state as JSON; the other columns are there to be searched.
create table action_request_status (
    id text primary key,
    client_id text not null,
    uid text not null,
    action text not null,
    status text not null,
    version bigint not null,
    expires_at text not null,
    token_expires_at text,
    token_hash text unique,
    idempotency_key text,
    view text not null,
    updated_at text not null,
    unique (client_id, idempotency_key)
);
create index action_request_status_due on action_request_status (status, expires_at);

-- Which devices each request was addressed to: the device inbox.
create table action_request_devices (
    device_id text not null,
    request_id text not null,
    primary key (device_id, request_id)
);

-- Enrolled authenticators.
create table devices (
    id text primary key,
    client_id text not null,
    uid text not null,
    kind text not null,
    name text not null,
    public_key text,
    token_hash text not null unique,
    status text not null,
    enrolled_at text not null,
    revoked_at text,
    last_used_at text,
    version bigint not null
);
create index devices_by_user on devices (client_id, uid);
