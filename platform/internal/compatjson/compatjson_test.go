package compatjson

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

type decodeInner struct {
	N int `json:"n"`
}

type decodeAll struct {
	Name     string            `json:"name"`
	Count    int64             `json:"count,string"`
	Ratio    float64           `json:"ratio"`
	At       time.Time         `json:"at"`
	Tags     []string          `json:"tags"`
	Labels   map[string]string `json:"labels"`
	Inner    *decodeInner      `json:"inner"`
	Raw      json.RawMessage   `json:"raw"`
	Any      any               `json:"any"`
	Skipped  string            `json:"-"`
	Untagged bool
	decodeInner
}

// Unmarshal must decode every input as encoding/json does: the same value,
// or the same error.
func TestUnmarshalMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{"name":"a","count":"12","ratio":1.5,"at":"2026-01-02T03:04:05.123456789Z","tags":["x","y"],"labels":{"k":"v"},"inner":{"n":3},"raw":{"a":[1,2]},"any":{"b":true},"Untagged":true,"n":7}`,
		`{"NAME":"case folded","untagged":true,"N":2}`, // encoding/json matches names in any case
		`{"name":"first","name":"last"}`,               // a name twice: the last wins
		`{"name":"bad utf8 \xff"}`,                     // invalid UTF-8 is replaced
		`{"name":"\ud800"}`,                            // a lone surrogate
		`{"unknown":1,"name":"unknown fields are ignored"}`,
		`{"name":null,"tags":null,"inner":null}`,
		`{"-":"not the skipped field","Skipped":"nor this"}`,
		`{"count":12}`,      // not a string under ,string
		`{"ratio":"1.5"}`,   // a string into a number
		`{"name":"x"} junk`, // trailing data
		`{"name":"x"`,       // truncated
		`[]`,
		`null`,
		``,
		`{"at":"not a time"}`,
		`{"tags":["x",1]}`,
		`{"inner":{"n":1.5}}`,
	}
	for _, in := range inputs {
		var want, got decodeAll
		wantErr := json.Unmarshal([]byte(in), &want)
		gotErr := Unmarshal([]byte(in), &got)
		if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Errorf("%s: error %v, encoding/json's %v", in, gotErr, wantErr)
			continue
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", in, got, want)
		}
	}
}

func TestUnmarshalIntoScalars(t *testing.T) {
	var n int
	if err := Unmarshal([]byte(`42`), &n); err != nil || n != 42 {
		t.Fatalf("got %d, %v", n, err)
	}
	var s string
	if err := Unmarshal([]byte(`7`), &s); err == nil {
		t.Fatalf("a number decoded into a string: %q", s)
	}
}
