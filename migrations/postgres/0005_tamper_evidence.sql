-- Tamper evidence. Every event carries its link in the hash chain (`hash` = SHA-256 of
-- `prev_hash` and the event's canonical bytes, see docs/AUDIT.md), and `merkle_nodes` keeps
-- the complete subtrees of the RFC 9162 Merkle tree over the log, numbered in the order they
-- are completed, so proofs never read the whole log. Both are written by the appending
-- transaction itself, under the log's lock.
alter table events add column prev_hash bytea;
alter table events add column hash bytea;

create table merkle_nodes (
    number bigint primary key,
    hash   bytea  not null
);

create function merkle_nodes_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'merkle nodes are append-only';
end;
$$;

create trigger merkle_nodes_no_update_or_delete before update or delete on merkle_nodes
    for each statement execute function merkle_nodes_append_only();

create trigger merkle_nodes_no_truncate before truncate on merkle_nodes
    for each statement execute function merkle_nodes_append_only();

-- Events written before this migration get their links once, when the store opens; after
-- that, no column of an event may change.
drop trigger events_no_update_or_delete on events;

create trigger events_no_delete before delete on events
    for each statement execute function events_append_only();

create function events_link_once() returns trigger language plpgsql as $$
begin
    if old.hash is not null or old.prev_hash is not null
        or (new.position, new.stream_id, new.stream_version, new.event_id, new.event_type,
            new.schema_version, new.data, new.metadata, new.recorded_at)
           is distinct from
           (old.position, old.stream_id, old.stream_version, old.event_id, old.event_type,
            old.schema_version, old.data, old.metadata, old.recorded_at)
    then
        raise exception 'events are append-only';
    end if;
    return new;
end;
$$;

create trigger events_no_update before update on events
    for each row execute function events_link_once();

-- The auditors' search: by user, client and status within a creation period.
alter table action_request_status add column created_at text not null default '';
update action_request_status set created_at = view::jsonb ->> 'created_at';
create index action_request_status_by_user on action_request_status (uid, created_at);
create index action_request_status_by_created on action_request_status (created_at);
