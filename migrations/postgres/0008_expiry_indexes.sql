-- The expiry sweep reads what is due from two partial indexes, one per kind of deadline, each
-- holding only the rows that can still expire (pending requests, confirmed tokens) in deadline
-- order. The index on (status, expires_at) held every request ever made, and the sweep, every
-- second, collected all its matching entries into a bitmap, those of past row versions too
-- (they stay in an index until a vacuum removes them), and visited each one's rows again.
--
-- A rebuild before this version left the index under a name derived from `<table>_next`, so
-- it is found by its definition.
do $$
declare
    name text;
begin
    for name in
        select indexname from pg_indexes
        where schemaname = current_schema() and tablename = 'action_request_status'
          and indexdef like '% USING btree (status, expires_at)'
    loop
        execute format('drop index %I', name);
    end loop;
end
$$;
create index action_request_status_pending_due on action_request_status (expires_at)
    where status = 'PENDING';
create index action_request_status_token_due on action_request_status (token_expires_at)
    where status = 'CONFIRMED';
