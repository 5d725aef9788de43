// Package setting lets a bounded context declare its runtime settings and
// read their current values. [Declare] hands the declaration to the settings
// context as fx data, not as an event (a context publishes only its own
// topics): once the app starts, the settings context stores every declared
// schema and republishes the values stored for it. The values are kept in a
// local cache that every instance refreshes from settings.setting.updated.
// An app that does not wire the settings context stores no declaration, and
// its caches keep the defaults.
//
//	var Schema = setting.Schema{Context: "identity", Settings: []setting.Definition{
//		setting.Bool("registration_open", true, "whether new users may register"),
//	}}
//
//	fx.Module("identity", setting.Declare(Schema), ...) // provides *setting.Cache inside the module
//	if !cache.Bool("registration_open") { ... }
package setting

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Types of settings.
const (
	TypeBool   = "bool"
	TypeInt    = "int"
	TypeString = "string"
)

// Schema is the settings one context declares.
type Schema struct {
	Context  string
	Settings []Definition
}

// Definition declares one setting: its type, default and what values are
// valid. Values are JSON: true, 42, "pro".
type Definition struct {
	Key         string
	Type        string // TypeBool, TypeInt or TypeString
	Default     json.RawMessage
	Allowed     []string // for strings: the only valid values
	Min         *int64   // for ints
	Max         *int64   // for ints
	Description string
}

// Bool declares a boolean setting.
func Bool(key string, def bool, description string) Definition {
	return Definition{Key: key, Type: TypeBool, Default: mustJSON(def), Description: description}
}

// Int declares an integer setting within [lo, hi].
func Int(key string, def, lo, hi int64, description string) Definition {
	return Definition{Key: key, Type: TypeInt, Default: mustJSON(def), Min: &lo, Max: &hi, Description: description}
}

// Enum declares a string setting restricted to allowed.
func Enum(key, def string, allowed []string, description string) Definition {
	return Definition{Key: key, Type: TypeString, Default: mustJSON(def), Allowed: allowed, Description: description}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only bools, ints and strings reach here
	}
	return b
}

// Validate reports why value is not valid for d, or nil.
func Validate(d Definition, value json.RawMessage) error {
	switch d.Type {
	case TypeBool:
		var b bool
		if err := json.Unmarshal(value, &b); err != nil {
			return fmt.Errorf("%s must be true or false", d.Key)
		}
	case TypeInt:
		var n int64
		if err := json.Unmarshal(value, &n); err != nil {
			return fmt.Errorf("%s must be an integer", d.Key)
		}
		if (d.Min != nil && n < *d.Min) || (d.Max != nil && n > *d.Max) {
			return fmt.Errorf("%s must be between %d and %d", d.Key, *d.Min, *d.Max)
		}
	case TypeString:
		var s string
		if err := json.Unmarshal(value, &s); err != nil {
			return fmt.Errorf("%s must be a string", d.Key)
		}
		if len(d.Allowed) > 0 && !slices.Contains(d.Allowed, s) {
			return fmt.Errorf("%s must be one of %s", d.Key, strings.Join(d.Allowed, ", "))
		}
	default:
		return fmt.Errorf("%s has unknown type %q", d.Key, d.Type)
	}
	return nil
}
