package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/cenkalti/backoff/v5"
)

// connectWithRetry calls dial until it succeeds or timeout has passed,
// logging each failure, so a broker that starts a little after the app is
// waited for and a broker that never comes makes start-up fail loudly.
func connectWithRetry(ctx context.Context, what string, timeout time.Duration, logger watermill.LoggerAdapter, dial func() error) error {
	start := time.Now()
	deadline := start.Add(timeout)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 250*time.Millisecond, 5*time.Second
	for {
		err := dial()
		if err == nil {
			return nil
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return fmt.Errorf("bus: cannot connect to %s after %s: %w", what, time.Since(start).Round(time.Millisecond), err)
		}
		wait := min(b.NextBackOff(), remaining)
		logger.Error("Broker unreachable, retrying", err, watermill.LogFields{"broker": what, "retry_in": wait.String()})
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("bus: connect to %s: %w (last error: %w)", what, ctx.Err(), err)
		}
	}
}
