-- Tamper evidence. Every event carries its link in the hash chain (`hash` = SHA-256 of
-- `prev_hash` and the event's canonical bytes, see docs/AUDIT.md), and `merkle_nodes` keeps
-- the complete subtrees of the RFC 9162 Merkle tree over the log, numbered in the order they
-- are completed, so proofs never read the whole log. Both are written by the appending
-- transaction itself.
alter table events add column prev_hash blob;
alter table events add column hash blob;

create table merkle_nodes (
    number integer primary key,
    hash   blob    not null
);

create trigger merkle_nodes_no_update before update on merkle_nodes
begin
    select raise(abort, 'merkle nodes are append-only');
end;

create trigger merkle_nodes_no_delete before delete on merkle_nodes
begin
    select raise(abort, 'merkle nodes are append-only');
end;

-- Events written before this migration get their links once, when the store opens; after
-- that, no column of an event may change.
drop trigger events_no_update;
create trigger events_no_update before update on events
when old.hash is not null
    or old.prev_hash is not null
    or new.position is not old.position
    or new.stream_id is not old.stream_id
    or new.stream_version is not old.stream_version
    or new.event_id is not old.event_id
    or new.event_type is not old.event_type
    or new.schema_version is not old.schema_version
    or new.data is not old.data
    or new.metadata is not old.metadata
    or new.recorded_at is not old.recorded_at
begin
    select raise(abort, 'events are append-only');
end;

-- The auditors' search: by user, client and status within a creation period.
alter table action_request_status add column created_at text not null default '';
update action_request_status set created_at = json_extract(view, '$.created_at');
create index action_request_status_by_user on action_request_status (uid, created_at);
create index action_request_status_by_created on action_request_status (created_at);
