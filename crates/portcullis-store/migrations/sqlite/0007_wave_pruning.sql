-- Wave housekeeping (same number on both backends). Pruning finds expired tokens by
-- expiry; deleting a notification cascades to its inbox rows, and each node's live
-- fan-out reads recipients by notification id: both need inbox by notification_id (the
-- primary key leads with user_id). Numbered 0007 to leave 0006 to work in flight.
CREATE INDEX oauth1_request_tokens_by_expiry ON oauth1_request_tokens(expires_at);
CREATE INDEX wave_api_tokens_by_expiry ON wave_api_tokens(expires_at);
CREATE INDEX inbox_by_notification ON inbox(notification_id);
