package setting_test

import (
	"encoding/json"
	"testing"

	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

var schema = setting.Schema{Context: "shop", Settings: []setting.Definition{
	setting.Bool("open", true, "whether the shop takes orders"),
	setting.Int("max_items", 10, 1, 100, "items per order"),
	setting.Enum("plan", "free", []string{"free", "pro"}, "plan of new shops"),
}}

func TestValidate(t *testing.T) {
	defs := map[string]setting.Definition{}
	for _, d := range schema.Settings {
		defs[d.Key] = d
	}
	tests := []struct {
		key, value string
		valid      bool
	}{
		{"open", `false`, true},
		{"open", `"yes"`, false},
		{"max_items", `100`, true},
		{"max_items", `101`, false},
		{"max_items", `0`, false},
		{"max_items", `1.5`, false},
		{"plan", `"pro"`, true},
		{"plan", `"gold"`, false},
		{"plan", `7`, false},
	}
	for _, tt := range tests {
		err := setting.Validate(defs[tt.key], json.RawMessage(tt.value))
		if (err == nil) != tt.valid {
			t.Errorf("Validate(%s, %s) = %v, want valid=%v", tt.key, tt.value, err, tt.valid)
		}
	}
	if setting.Validate(setting.Definition{Key: "x", Type: "date"}, json.RawMessage(`"2026"`)) == nil {
		t.Error("an unknown type validated")
	}
}

func TestCache(t *testing.T) {
	c := setting.NewCache(schema)
	if !c.Bool("open") || c.Int("max_items") != 10 || c.String("plan") != "free" {
		t.Fatalf("defaults: %v %d %q", c.Bool("open"), c.Int("max_items"), c.String("plan"))
	}
	applied := []bool{
		c.Apply(topics.SettingUpdatedV1{Context: "shop", Key: "open", Value: json.RawMessage(`false`)}),
		c.Apply(topics.SettingUpdatedV1{Context: "shop", Key: "plan", Value: json.RawMessage(`"pro"`)}),
		c.Apply(topics.SettingUpdatedV1{Context: "other", Key: "open", Value: json.RawMessage(`true`)}),    // not ours
		c.Apply(topics.SettingUpdatedV1{Context: "shop", Key: "max_items", Value: json.RawMessage(`500`)}), // invalid
		c.Apply(topics.SettingUpdatedV1{Context: "shop", Key: "unknown", Value: json.RawMessage(`1`)}),
	}
	if want := []bool{true, true, false, false, false}; string(mustJSON(applied)) != string(mustJSON(want)) {
		t.Fatalf("Apply = %v, want %v", applied, want)
	}
	if c.Bool("open") || c.String("plan") != "pro" || c.Int("max_items") != 10 {
		t.Fatalf("after updates: %v %q %d", c.Bool("open"), c.String("plan"), c.Int("max_items"))
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
