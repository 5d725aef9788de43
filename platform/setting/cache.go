package setting

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/topics"
)

// Cache holds one context's current setting values, starting from the
// declared defaults.
type Cache struct {
	schema Schema
	mu     sync.RWMutex
	values map[string]json.RawMessage
}

// NewCache returns a cache holding schema's defaults.
func NewCache(schema Schema) *Cache {
	c := &Cache{schema: schema, values: map[string]json.RawMessage{}}
	for _, d := range schema.Settings {
		c.values[d.Key] = d.Default
	}
	return c
}

// Bool returns a bool setting's value (false when key is not a declared bool).
func (c *Cache) Bool(key string) bool {
	var v bool
	c.decode(key, &v)
	return v
}

// Int returns an int setting's value.
func (c *Cache) Int(key string) int64 {
	var v int64
	c.decode(key, &v)
	return v
}

// String returns a string setting's value.
func (c *Cache) String(key string) string {
	var v string
	c.decode(key, &v)
	return v
}

func (c *Cache) decode(key string, dst any) {
	c.mu.RLock()
	raw := c.values[key]
	c.mu.RUnlock()
	_ = json.Unmarshal(raw, dst) // values are validated when set
}

// Apply stores an updated value if it belongs to this context and is valid
// for its declaration, and reports whether it did.
func (c *Cache) Apply(u topics.SettingUpdatedV1) bool {
	if u.Context != c.schema.Context {
		return false
	}
	for _, d := range c.schema.Settings {
		if d.Key == u.Key && Validate(d, u.Value) == nil {
			c.mu.Lock()
			c.values[u.Key] = u.Value
			c.mu.Unlock()
			return true
		}
	}
	return false
}

// Declare provides a *Cache for schema inside the calling fx.Module, keeps
// it current on every instance, and announces schema once the bus runs.
func Declare(schema Schema) fx.Option {
	return fx.Options(
		fx.Provide(fx.Private, func(lc fx.Lifecycle, pub bus.Publisher) *Cache {
			c := NewCache(schema)
			// Appended after the bus's own start hook (the bus is built
			// first, as a dependency), so the bus runs when this fires.
			lc.Append(fx.StartHook(func(ctx context.Context) error {
				return bus.Publish(ctx, pub, topics.SchemaAnnounced, schema.Context,
					topics.SchemaAnnouncedV1{Context: schema.Context, Settings: schema.Settings})
			}))
			return c
		}),
		fx.Provide(bus.AsHandlers(func(c *Cache, logger *slog.Logger) []bus.Handler {
			return []bus.Handler{bus.NewHandler(schema.Context+".refresh-settings", topics.SettingUpdated,
				func(ctx context.Context, e bus.Event[topics.SettingUpdatedV1]) error {
					if c.Apply(e.Payload) {
						logger.InfoContext(ctx, "Setting updated", "context", e.Payload.Context, "key", e.Payload.Key, "value", string(e.Payload.Value))
					}
					return nil
				}, bus.Broadcast())}
		})),
	)
}
