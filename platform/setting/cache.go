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
// it current on every instance, and adds schema to the [Declared] schemas,
// which the settings context stores once the app starts (an invalid schema
// then fails the start).
func Declare(schema Schema) fx.Option {
	return fx.Options(
		fx.Provide(fx.Annotate(func() Schema { return schema }, fx.ResultTags(`group:"setting.schemas"`))),
		fx.Provide(fx.Private, func() *Cache { return NewCache(schema) }),
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

// Declared is every schema declared with [Declare] in the app, in no
// particular order: the settings context takes it to store them.
type Declared struct {
	fx.In
	Schemas []Schema `group:"setting.schemas"`
}
