package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"

	"go.uber.org/fx"
	"gopkg.in/yaml.v3"
)

// sectionsGroup is the fx value group of the sections claimed with [Section].
const sectionsGroup = `group:"config.sections"`

// Sections is a mapping of named sections kept as raw YAML by [Load], for
// types the loader does not know: as a field tagged `yaml:"contexts"`, each
// entry under contexts: waits for the module that claims it with [Section].
// The zero value holds no section.
type Sections struct {
	path string // the mapping's key path; set by Load
	raw  map[string]rawSection
}

type rawSection struct {
	line  int // of the section's key, for errors
	value *yaml.Node
}

// Validator is a configuration section that checks its own values. Its
// errors start with the key they are about, relative to the section
// ("bcrypt_cost: must be 4 to 31, got 2"); [Section] prefixes the section's
// path, so the user reads contexts.identity.bcrypt_cost.
type Validator interface {
	Validate() error
}

// claim is a section a module claimed, with the check that decodes it.
type claim struct {
	name  string
	check func(Sections) error
}

// Section claims the entry name of the application's [Sections] for the
// fx.Module it is written in, and provides it there (fx.Private) as a T:
// defaults, then the YAML entry, then APP_<PATH> variables (e.g.
// APP_CONTEXTS_IDENTITY_BCRYPT_COST), then T's Validate. Decoding is as
// strict as [Load]'s, and errors name the full key path:
//
//	var Module = fx.Module("identity",
//		config.Section("identity", app.DefaultConfig()),
//		...
//	)
func Section[T Validator](name string, defaults T) fx.Option {
	decode := func(s Sections) (T, error) { return decodeSection(s, name, defaults) }
	check := func(s Sections) error {
		_, err := decode(s)
		return err
	}
	return fx.Options(
		fx.Provide(fx.Private, decode),
		fx.Supply(fx.Annotate(claim{name: name, check: check}, fx.ResultTags(sectionsGroup))),
	)
}

// CheckSections checks the application's [Sections], which it takes from
// the graph. It stops start-up on an entry nobody claims with [Section],
// naming it like any unknown key (a misspelt context name fails instead of
// being ignored), and on the first claimed section, in file order, that does
// not decode or validate, even in a command that uses none of them.
var CheckSections = fx.Invoke(fx.Annotate(
	func(s Sections, claimed []claim) error { return s.check(claimed) },
	fx.ParamTags(``, sectionsGroup),
))

// decodeSections keeps the entries of mapping n raw in v, a Sections.
func decodeSections(n *yaml.Node, v reflect.Value, path string) error {
	raw := map[string]rawSection{}
	err := eachPair(n, path, func(key, val *yaml.Node) error {
		raw[key.Value] = rawSection{line: key.Line, value: val}
		return nil
	})
	if err != nil {
		return err
	}
	v.Set(reflect.ValueOf(Sections{raw: raw}))
	return nil
}

// decodeSection returns defaults overlaid by the entry name and its APP_
// variables, validated.
func decodeSection[T Validator](s Sections, name string, defaults T) (T, error) {
	cfg, path := defaults, join(s.path, name)
	v, err := target(&cfg)
	if err != nil {
		return defaults, err
	}
	if r, ok := s.raw[name]; ok {
		if err := decode(r.value, v, path); err != nil {
			return defaults, err
		}
	}
	if err := applyEnv(v, path); err != nil {
		return defaults, err
	}
	if err := cfg.Validate(); err != nil {
		return defaults, fmt.Errorf("config: %w", underKey(path, err))
	}
	return cfg, nil
}

// underKey prefixes err, and each error it joins, with path.
func underKey(path string, err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range joined.Unwrap() {
			errs = append(errs, underKey(path, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s.%w", path, err)
}

// check implements CheckSections.
func (s Sections) check(claimed []claim) error {
	seen := map[string]bool{}
	for _, c := range claimed {
		if seen[c.name] {
			return fmt.Errorf("config: section %q is claimed by two modules", join(s.path, c.name))
		}
		seen[c.name] = true
	}
	var unclaimed []string
	for name := range s.raw {
		if !seen[name] {
			unclaimed = append(unclaimed, name)
		}
	}
	if len(unclaimed) > 0 {
		first := slices.MinFunc(unclaimed, func(a, b string) int { return s.raw[a].line - s.raw[b].line })
		return fmt.Errorf("config: unknown key %q (line %d)", join(s.path, first), s.raw[first].line)
	}
	// fx hands the group over in random order; the file's is stable.
	slices.SortFunc(claimed, func(a, b claim) int {
		return cmp.Or(cmp.Compare(s.line(a.name), s.line(b.name)), cmp.Compare(a.name, b.name))
	})
	for _, c := range claimed {
		if err := c.check(s); err != nil {
			return err
		}
	}
	return nil
}

// line is the line of section name, past the end for an absent one.
func (s Sections) line(name string) int {
	if r, ok := s.raw[name]; ok {
		return r.line
	}
	return math.MaxInt
}
