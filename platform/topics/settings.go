package topics

import (
	"encoding/json"

	"github.com/example/monolith/platform/bus"
)

// SchemaAnnounced is published by every context at start to declare its
// settings to the settings context (the payload names the context).
var SchemaAnnounced = bus.NewTopic[SchemaAnnouncedV1]("settings.schema.announced", 1)

// SchemaAnnouncedV1 is one context's settings declaration.
type SchemaAnnouncedV1 struct {
	Context  string              `json:"context"`
	Settings []SettingDefinition `json:"settings"`
}

// SettingDefinition declares one setting: its type, default and what values
// are valid. Values are JSON: true, 42, "pro".
type SettingDefinition struct {
	Key         string          `json:"key"`
	Type        string          `json:"type"` // bool, int, string
	Default     json.RawMessage `json:"default"`
	Allowed     []string        `json:"allowed,omitempty"` // for strings: the only valid values
	Min         *int64          `json:"min,omitempty"`     // for ints
	Max         *int64          `json:"max,omitempty"`     // for ints
	Description string          `json:"description,omitempty"`
}

// SettingUpdated is published by settings when a setting's value changes,
// and for every stored value when its context announces its schema, so that
// every instance's cache converges.
var SettingUpdated = bus.NewTopic[SettingUpdatedV1]("settings.setting.updated", 1)

// SettingUpdatedV1 is a setting's current value.
type SettingUpdatedV1 struct {
	Context string          `json:"context"`
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
}

// ValidationFailed is published by settings when an update is rejected.
var ValidationFailed = bus.NewTopic[ValidationFailedV1]("settings.validation.failed", 1)

// ValidationFailedV1 is a rejected update and why.
type ValidationFailedV1 struct {
	Context string          `json:"context"`
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Reason  string          `json:"reason"`
}
