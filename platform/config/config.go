// Package config loads strict YAML configuration into plain Go structs.
//
// Values are layered: the defaults already in the destination struct, then
// the YAML file (after ${VAR} expansion), then APP_* environment variables.
// The package is generic: it is driven by reflection and `yaml` struct tags
// and knows nothing about the application's own config types. A [Sections]
// field keeps its entries raw, so that each fx module can declare and decode
// its own section with [Section].
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// mask replaces secrets in Redact's output.
const mask = "xxxxx"

var (
	durationType = reflect.TypeFor[time.Duration]()
	sectionsType = reflect.TypeFor[Sections]()

	// varRef matches $$, ${...} and, to report it, an unterminated ${.
	varRef  = regexp.MustCompile(`\$\$|\$\{[^}]*\}|\$\{`)
	varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

	// dsnPassword matches password=... and sslpassword=... (a client key's
	// passphrase) in key=value DSNs and URL queries.
	dsnPassword = regexp.MustCompile(`(?i)(\b(?:ssl)?password=)('[^']*'|[^\s&]*)`)

	kindNames = map[yaml.Kind]string{
		yaml.SequenceNode: "sequence",
		yaml.MappingNode:  "mapping",
		yaml.ScalarNode:   "scalar",
	}
)

// Load reads the YAML file at path into dst, a pointer to a struct already
// filled with defaults. An empty path means no file: defaults and
// environment only.
//
// Steps, in order:
//  1. ${VAR} and ${VAR:-default} in the YAML text expand from the
//     environment (the default also applies when VAR is set but empty);
//     $$ is a literal $. An unset VAR without a default is an error.
//  2. The YAML is applied onto dst strictly: every key must match a field's
//     `yaml` tag, and every value must parse as the field's type. A YAML
//     null keeps the default; a mapping for a map field replaces the
//     default map, while nested structs are merged field by field.
//  3. For every leaf field, the environment variable APP_<PATH> (the dotted
//     key path upper-cased, dots replaced by underscores, e.g.
//     bus.retry.max_retries -> APP_BUS_RETRY_MAX_RETRIES) overrides the
//     value when set. Slices take comma-separated values; maps cannot be
//     overridden. Unknown APP_ variables are ignored.
//
// Supported field types are strings, bools, all integer and float kinds,
// time.Duration (Go syntax such as "1.5s"), slices and string-keyed maps of
// those, nested structs, and [Sections]. Fields without a `yaml` tag, tagged
// `yaml:"-"` or unexported are ignored.
func Load(path string, dst any) error {
	v, err := target(dst)
	if err != nil {
		return err
	}
	if path != "" {
		if err := loadFile(path, v); err != nil {
			return err
		}
	}
	return applyEnv(v, "")
}

// target returns the struct dst points to.
func target(dst any) (reflect.Value, error) {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("config: destination must be a non-nil pointer to a struct, got %T", dst)
	}
	return v.Elem(), nil
}

func loadFile(path string, v reflect.Value) error {
	data, err := os.ReadFile(path) //nolint:gosec // G304: reading the file the operator named is the point
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	text, err := expand(string(data))
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if len(doc.Content) == 0 { // empty file or only comments
		return nil
	}
	return decode(doc.Content[0], v, "")
}

// expand substitutes environment references line by line so errors can
// name the line.
func expand(text string) (string, error) {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		var err error
		lines[i] = varRef.ReplaceAllStringFunc(line, func(ref string) string {
			if err != nil {
				return ref
			}
			var s string
			s, err = resolve(ref)
			return s
		})
		if err != nil {
			return "", fmt.Errorf("config: %w (line %d)", err, i+1)
		}
	}
	return strings.Join(lines, "\n"), nil
}

// resolve returns the replacement for one varRef match.
func resolve(ref string) (string, error) {
	if ref == "$$" {
		return "$", nil
	}
	inner, ok := strings.CutSuffix(ref[2:], "}")
	if !ok {
		return "", errors.New(`unterminated "${"`)
	}
	name, def, hasDef := strings.Cut(inner, ":-")
	if !varName.MatchString(name) {
		return "", fmt.Errorf("invalid variable reference %q", ref)
	}
	if s, ok := os.LookupEnv(name); ok && (s != "" || !hasDef) {
		return s, nil
	}
	if hasDef {
		return def, nil
	}
	return "", fmt.Errorf("environment variable %q is not set", name)
}

// decode applies node n onto v; path is the dotted key path used in errors.
func decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // `key:` with no value keeps the default
	}
	if v.Type() == sectionsType {
		return decodeSections(n, v, path)
	}
	switch v.Kind() {
	case reflect.Struct:
		return eachPair(n, path, func(key, val *yaml.Node) error {
			p := join(path, key.Value)
			f, ok := field(v, key.Value)
			if !ok {
				return fmt.Errorf("config: unknown key %q (line %d)", p, key.Line)
			}
			return decode(val, f, p)
		})
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return errAt(n, path, fmt.Errorf("unsupported type %s", v.Type()))
		}
		m := reflect.MakeMap(v.Type())
		err := eachPair(n, path, func(key, val *yaml.Node) error {
			e := reflect.New(v.Type().Elem()).Elem()
			if err := decode(val, e, join(path, key.Value)); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), e)
			return nil
		})
		if err != nil {
			return err
		}
		v.Set(m)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return mismatch(n, path, "sequence")
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			return mismatch(n, path, "scalar")
		}
		if err := setScalar(v, n.Value); err != nil {
			return errAt(n, path, err)
		}
	}
	return nil
}

// eachPair calls fn for every key/value of a mapping node. It rejects
// duplicate keys, which yaml.v3 only reports when decoding into Go values.
func eachPair(n *yaml.Node, path string, fn func(key, val *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return mismatch(n, path, "mapping")
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		if seen[key.Value] {
			return fmt.Errorf("config: duplicate key %q (line %d)", join(path, key.Value), key.Line)
		}
		seen[key.Value] = true
		if err := fn(key, n.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// field returns the field of struct v whose yaml tag is name.
func field(v reflect.Value, name string) (reflect.Value, bool) {
	for i := range v.NumField() {
		if fieldName(v.Type().Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// fieldName returns the YAML key of f, or "" if f is ignored.
func fieldName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	return name
}

// applyEnv overrides the leaf fields of struct v from APP_* variables.
func applyEnv(v reflect.Value, path string) error {
	for i := range v.NumField() {
		name := fieldName(v.Type().Field(i))
		if name == "" {
			continue
		}
		f, p := v.Field(i), join(path, name)
		if f.Type() == sectionsType {
			// A section reads its variables when a module decodes it (its
			// type is unknown until then), under this path.
			f.Addr().Interface().(*Sections).path = p
			continue
		}
		switch f.Kind() {
		case reflect.Struct:
			if err := applyEnv(f, p); err != nil {
				return err
			}
			continue
		case reflect.Map:
			continue // no fixed keys to derive variable names from
		}
		key := "APP_" + strings.ToUpper(strings.ReplaceAll(p, ".", "_"))
		s, ok := os.LookupEnv(key)
		if !ok {
			continue
		}
		if err := setEnv(f, s); err != nil {
			return fmt.Errorf("config: %s (%s): %w", key, p, err)
		}
	}
	return nil
}

// setEnv parses an environment value into v; slices are comma-separated.
func setEnv(v reflect.Value, s string) error {
	if v.Kind() != reflect.Slice {
		return setScalar(v, s)
	}
	var items []string
	if s != "" { // an empty variable means an empty list, not [""]
		items = strings.Split(s, ",")
	}
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		if err := setScalar(out.Index(i), strings.TrimSpace(item)); err != nil {
			return err
		}
	}
	v.Set(out)
	return nil
}

// setScalar parses s into v, which must be a scalar kind.
func setScalar(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			// time's error only repeats the input, so it is not wrapped.
			return fmt.Errorf("invalid duration %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return invalid("bool", s, err)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 0, v.Type().Bits())
		if err != nil {
			return invalid("integer", s, err)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u, err := strconv.ParseUint(s, 0, v.Type().Bits())
		if err != nil {
			return invalid("unsigned integer", s, err)
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return invalid("number", s, err)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// invalid reports an unparsable value, keeping only strconv's reason
// (syntax or range) since its message repeats the input.
func invalid(what, s string, err error) error {
	if ne, ok := errors.AsType[*strconv.NumError](err); ok {
		err = ne.Err
	}
	return fmt.Errorf("invalid %s %q: %w", what, s, err)
}

func mismatch(n *yaml.Node, path, want string) error {
	return errAt(n, path, fmt.Errorf("expected a %s, got a %s", want, kindNames[n.Kind]))
}

// errAt prefixes err with the key path and suffixes the node's line.
func errAt(n *yaml.Node, path string, err error) error {
	if path == "" {
		path = "(root)"
	}
	return fmt.Errorf("config: %s: %w (line %d)", path, err, n.Line)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Redact returns s with any password replaced by "xxxxx", for logging.
// It handles URLs with userinfo (amqp://user:pw@host/,
// redis://:pw@host:6379/0) and password=... or sslpassword=... in
// key=value DSNs or URL queries. Strings without credentials are returned unchanged; if s looks
// like a URL but does not parse, everything between "://" and the last "@"
// is masked.
func Redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mask)
			s = u.String()
		}
	} else if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.LastIndex(s, "@"); j > i {
			s = s[:i+len("://")] + mask + s[j:]
		}
	}
	return dsnPassword.ReplaceAllString(s, "${1}"+mask)
}
