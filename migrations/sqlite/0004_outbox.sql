-- The transactional outbox: messages to deliver, written in the transaction of the event that
-- calls for them, drained by the delivery worker with retries (at-least-once).
create table outbox (
    id text primary key,
    kind text not null,
    request_id text not null,
    client_id text not null,
    target text not null,
    body text not null,
    attempts integer not null default 0,
    next_attempt_at text not null,
    deliver_until text not null,
    lease_until text,
    status text not null,
    last_error text,
    delivered_at text,
    created_at text not null
);
create index outbox_due on outbox (status, next_attempt_at);

-- Every delivery attempt and its result, for auditors.
create table outbox_attempts (
    outbox_id text not null,
    attempt integer not null,
    at text not null,
    outcome text not null,
    status_code integer,
    error text,
    primary key (outbox_id, attempt)
);
