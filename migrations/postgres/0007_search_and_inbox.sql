-- The auditors' search and the device inbox become projections that follow the log on their own
-- (they start from position 0 and catch up when the server starts). The inline device links
-- and the search indexes on the status table are no longer read.
drop index action_request_status_by_user;
drop index action_request_status_by_created;
drop table action_request_devices;

-- The auditors' search: one row per action request, by user, client and status within a
-- creation period.
create table audit_search (
    id         text primary key,
    client_id  text not null,
    uid        text not null,
    action     text not null,
    status     text not null,
    created_at text not null,
    updated_at text not null
);
create index audit_search_by_user on audit_search (uid, created_at, id);
create index audit_search_by_client on audit_search (client_id, created_at, id);
create index audit_search_by_status on audit_search (status, created_at, id);
create index audit_search_by_created on audit_search (created_at, id);

-- The device inbox: one row per (device, request) while the request is pending; the item is
-- the inbox entry's JSON without its version.
create table device_inbox (
    device_id  text    not null,
    request_id text    not null,
    expires_at text    not null,
    version    integer not null,
    item       text    not null,
    primary key (device_id, request_id)
);
create index device_inbox_by_request on device_inbox (request_id);
