-- The expiry sweep reads what is due from two partial indexes, one per kind of deadline, each
-- holding only the rows that can still expire (pending requests, confirmed tokens) in deadline
-- order, instead of an index on (status, expires_at) that held every request ever made.
drop index action_request_status_due;
create index action_request_status_pending_due on action_request_status (expires_at)
    where status = 'PENDING';
create index action_request_status_token_due on action_request_status (token_expires_at)
    where status = 'CONFIRMED';
