package poison

import (
	"context"
	"fmt"

	"github.com/example/monolith/platform/poison/internal/store"
)

// Count is how many messages of one original topic one handler gave up on.
type Count struct {
	Topic    string
	Handler  string
	Messages int64
}

// Counts returns how many messages the store holds per original topic and
// handler, by topic then handler; pairs without a message are left out.
func (s *Store) Counts(ctx context.Context) ([]Count, error) {
	rows, err := store.New(s.db.Q(ctx)).CountPoisonedByHandler(ctx)
	if err != nil {
		return nil, fmt.Errorf("count poisoned messages: %w", err)
	}
	out := make([]Count, 0, len(rows))
	for _, r := range rows {
		out = append(out, Count{Topic: r.Topic, Handler: r.Handler, Messages: r.Messages})
	}
	return out, nil
}
