package topics

import (
	"encoding/json"

	"github.com/example/monolith/platform/bus"
)

// SettingUpdated is published by settings when a setting's value changes,
// and for every stored value when settings stores its context's declared
// schema (every instance does at start), so that every instance's cache
// converges.
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
