-- The append-only event log. Positions are assigned by the single writer (max + 1) and never
-- reused; times are UTC RFC 3339 with microseconds, so text order is time order.
create table events (
    position       integer primary key,
    stream_id      text    not null,
    stream_version integer not null,
    event_id       text    not null unique,
    event_type     text    not null,
    schema_version integer not null,
    data           text    not null,
    metadata       text    not null,
    recorded_at    text    not null,
    unique (stream_id, stream_version)
);

create trigger events_no_update before update on events
begin
    select raise(abort, 'events are append-only');
end;

create trigger events_no_delete before delete on events
begin
    select raise(abort, 'events are append-only');
end;
