package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/example/monolith/platform/bus"
)

// Published is a topic as an AsyncAPI document written by [AsyncAPI]
// describes it.
type Published struct {
	Version int
	Payload any // JSON Schema
}

// ReadAsyncAPI reads the topics of a document written by [AsyncAPI], by
// name: their schema version (the schema_version header's constant) and
// payload schema.
func ReadAsyncAPI(doc []byte) (map[string]Published, error) {
	var d struct {
		Components struct {
			Messages map[string]struct {
				Headers struct {
					Properties map[string]struct {
						Const string `yaml:"const"`
					} `yaml:"properties"`
				} `yaml:"headers"`
				Payload any `yaml:"payload"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("read AsyncAPI document: %w", err)
	}
	topics := map[string]Published{}
	for name, m := range d.Components.Messages {
		v := m.Headers.Properties[bus.MetaSchemaVersion].Const
		if v == "" {
			continue // the poison topic: no schema of its own
		}
		version, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("read AsyncAPI document: message %s: schema version %q: %w", name, v, err)
		}
		topics[name] = Published{Version: version, Payload: m.Payload}
	}
	return topics, nil
}

// BreakingChanges compares every topic of c with its published version and
// lists the incompatible payload changes made without raising the topic's
// schema version. A topic not yet published has nothing to break.
func (c Catalog) BreakingChanges(published map[string]Published) []string {
	var out []string
	for _, t := range c.Topics {
		p, ok := published[t.Name]
		switch {
		case !ok || t.Version > p.Version:
		case t.Version < p.Version:
			out = append(out, fmt.Sprintf("%s: schema version lowered from %d to %d", t.Name, p.Version, t.Version))
		default:
			for _, change := range Breaking(p.Payload, t.Payload) {
				out = append(out, fmt.Sprintf("%s (version %d): %s", t.Name, t.Version, change))
			}
		}
	}
	return out
}

// Breaking lists what changed from was to now, two JSON Schemas of one
// payload, that a consumer or producer built against was would trip on: a
// property removed, a type changed, a property newly required. Adding an
// optional property is not breaking.
func Breaking(was, now any) []string {
	var out []string
	breaking("payload", was, now, &out)
	return out
}

func breaking(path string, was, now any, out *[]string) {
	if o, n := typeOf(was), typeOf(now); o != n {
		*out = append(*out, fmt.Sprintf("%s: type %s became %s", path, o, n))
		return
	}
	o, _ := was.(map[string]any)
	n, _ := now.(map[string]any)
	wasRequired := map[any]bool{}
	for _, name := range list(o["required"]) {
		wasRequired[name] = true
	}
	for _, name := range list(n["required"]) {
		if !wasRequired[name] {
			*out = append(*out, fmt.Sprintf("%s.%v: newly required", path, name))
		}
	}
	oldProps, _ := o["properties"].(map[string]any)
	newProps, _ := n["properties"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(oldProps)) {
		if p, ok := newProps[name]; ok {
			breaking(path+"."+name, oldProps[name], p, out)
		} else {
			*out = append(*out, fmt.Sprintf("%s.%s: removed", path, name))
		}
	}
	for _, key := range []string{"items", "additionalProperties"} {
		if _, ok := o[key].(map[string]any); ok {
			breaking(path+"["+key+"]", o[key], n[key], out)
		}
	}
}

// typeOf is a schema's type keyword as text, "any" when it has none.
func typeOf(schema any) string {
	s, _ := schema.(map[string]any)
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		names := make([]string, len(t))
		for i, v := range t {
			names[i] = fmt.Sprint(v)
		}
		slices.Sort(names)
		return strings.Join(names, "|")
	}
	return "any"
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}
