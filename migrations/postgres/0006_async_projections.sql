-- Projections that follow the log on their own (catch-up subscriptions), each committing its
-- changes and its checkpoint in one transaction. A projection that fails on an event records
-- where and why, and stays there until it can apply that event: it never skips one.
create table projection_checkpoints (
    name            text    primary key,
    position        bigint not null,
    state           text    not null,
    failed_position bigint,
    error           text,
    updated_at      text    not null
);

-- Per-client daily statistics, by the day (UTC) a request was created.
create table client_daily_stats (
    client_id text    not null,
    day       text    not null,
    requests  bigint not null default 0,
    confirmed bigint not null default 0,
    rejected  bigint not null default 0,
    expired   bigint not null default 0,
    consumed  bigint not null default 0,
    primary key (client_id, day)
);

-- The requests the statistics have seen, to attribute later events to their client and day.
create table stats_requests (
    request_id text primary key,
    client_id  text not null,
    day        text not null,
    created_at text not null
);

-- How long each decided request waited for its user, for the daily median.
create table decision_times (
    request_id text    primary key,
    client_id  text    not null,
    day        text    not null,
    millis     bigint not null
);
create index decision_times_by_day on decision_times (client_id, day, millis);
