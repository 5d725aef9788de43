-- Pruning deletes the records older than the retention.
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
