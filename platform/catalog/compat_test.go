package catalog

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// published is the schema every case changes: an object with a required
// id, an optional note, a list of lines and a nested customer.
const published = `{
  "type": "object",
  "properties": {
    "id": {"type": "string"},
    "note": {"type": "string"},
    "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}},
    "customer": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
  },
  "required": ["id", "lines", "customer"]
}`

// edit returns published with fn applied.
func edit(t *testing.T, fn func(s map[string]any)) map[string]any {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal([]byte(published), &s); err != nil {
		t.Fatal(err)
	}
	fn(s)
	return s
}

func props(s map[string]any) map[string]any { return s["properties"].(map[string]any) }

func TestBreaking(t *testing.T) {
	tests := []struct {
		name string
		edit func(s map[string]any)
		want []string // nil: compatible
	}{
		{"unchanged", func(map[string]any) {}, nil},
		{"an optional property added", func(s map[string]any) {
			props(s)["tier"] = map[string]any{"type": "string"}
		}, nil},
		{"a required property no longer required", func(s map[string]any) {
			s["required"] = []any{"lines", "customer"}
		}, nil},
		{"a property removed", func(s map[string]any) {
			delete(props(s), "note")
		}, []string{"payload.note: removed"}},
		{"a type changed", func(s map[string]any) {
			props(s)["id"] = map[string]any{"type": "integer"}
		}, []string{"payload.id: type string became integer"}},
		{"a type widened to anything", func(s map[string]any) {
			props(s)["id"] = true
		}, []string{"payload.id: type string became any"}},
		{"a property newly required", func(s map[string]any) {
			s["required"] = append(s["required"].([]any), "note")
		}, []string{"payload.note: newly required"}},
		{"a required property added", func(s map[string]any) {
			props(s)["tier"] = map[string]any{"type": "string"}
			s["required"] = append(s["required"].([]any), "tier")
		}, []string{"payload.tier: newly required"}},
		{"a nested property removed", func(s map[string]any) {
			delete(props(props(s)["customer"].(map[string]any)), "name")
		}, []string{"payload.customer.name: removed"}},
		{"an item's type changed", func(s map[string]any) {
			item := props(s)["lines"].(map[string]any)["items"].(map[string]any)
			props(item)["sku"] = map[string]any{"type": "number"}
		}, []string{"payload.lines[items].sku: type string became number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			was := edit(t, func(map[string]any) {})
			if got := Breaking(was, edit(t, tt.edit)); !slices.Equal(got, tt.want) {
				t.Errorf("Breaking = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBreakingChangesNeedANewVersion(t *testing.T) {
	was := edit(t, func(map[string]any) {})
	now := edit(t, func(s map[string]any) { delete(props(s), "note") })
	c := Catalog{Topics: []Topic{{Name: "sales.order.placed", Version: 1, Payload: now}}}

	got := c.BreakingChanges(map[string]Published{"sales.order.placed": {Version: 1, Payload: was}})
	if len(got) != 1 || !strings.Contains(got[0], "sales.order.placed (version 1): payload.note: removed") {
		t.Errorf("a breaking change at the same version: %q", got)
	}
	if got := c.BreakingChanges(map[string]Published{"sales.order.placed": {Version: 2, Payload: now}}); len(got) != 1 || !strings.Contains(got[0], "lowered from 2 to 1") {
		t.Errorf("a lowered version: %q", got)
	}
	c.Topics[0].Version = 2
	if got := c.BreakingChanges(map[string]Published{"sales.order.placed": {Version: 1, Payload: was}}); got != nil {
		t.Errorf("a breaking change with the version raised: %q, want none", got)
	}
	if got := c.BreakingChanges(nil); got != nil {
		t.Errorf("a topic never published: %q, want none", got)
	}
}
