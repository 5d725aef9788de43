package bus

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	c := RetryConfig{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := c.backoff(i + 1); got != w {
			t.Errorf("backoff after attempt %d = %s, want %s", i+1, got, w)
		}
	}
}
