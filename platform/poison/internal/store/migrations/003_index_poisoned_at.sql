-- Pruning removes the messages older than outbox.retention.
CREATE INDEX poison_messages_poisoned_at ON poison_messages (poisoned_at);
