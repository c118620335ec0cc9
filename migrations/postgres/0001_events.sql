-- The append-only event log. Positions are assigned by the writers under one advisory lock
-- (max + 1, committed in that order) and never reused. `data` and `metadata` are text, not
-- jsonb, so the stored bytes are exactly the JSON that was appended.
create table events (
    position       bigint      primary key,
    stream_id      text        not null,
    stream_version bigint      not null,
    event_id       uuid        not null unique,
    event_type     text        not null,
    schema_version integer     not null,
    data           text        not null,
    metadata       text        not null,
    recorded_at    timestamptz not null,
    unique (stream_id, stream_version)
);

create function events_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'events are append-only';
end;
$$;

-- Statement triggers: they refuse even an update or delete that matches no row.
create trigger events_no_update_or_delete before update or delete on events
    for each statement execute function events_append_only();

create trigger events_no_truncate before truncate on events
    for each statement execute function events_append_only();
