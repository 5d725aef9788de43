-- How many deals each customer won, counted by the customer.count-won-deal
-- handler from customer.deal.won. Adding one is not idempotent: only the
-- handler's processed-events record keeps a redelivery from counting twice.
ALTER TABLE customers ADD COLUMN deals_won BIGINT NOT NULL DEFAULT 0;
