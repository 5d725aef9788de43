package domain

import (
	"encoding/json"
	"testing"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		` true `:           `true`,
		`"\u0070ro"`:       `"pro"`,
		`42`:               `42`,
		`-7`:               `-7`,
		`9007199254740993`: `9007199254740993`, // beyond float64's exact integers
		`{"b":1, "a":2}`:   `{"a":2,"b":1}`,
	} {
		got, err := Canonical(json.RawMessage(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{``, `null`, `tru`, `1 2`, `"a" "b"`} {
		if got, err := Canonical(json.RawMessage(in)); err == nil {
			t.Errorf("Canonical(%q) = %s, want an error", in, got)
		}
	}
}
