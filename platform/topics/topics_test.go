package topics_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMisuseDoesNotCompile builds the fixtures under testdata/misuse: a
// misspelt topic, or a payload or handler of the wrong type for a topic,
// must be a compile error, while the correct use beside them compiles.
func TestMisuseDoesNotCompile(t *testing.T) {
	tests := []struct {
		fixture string
		want    string // "" means it must compile
	}{
		{"control", ""},
		{"wrongpayload", "type topics.UserSuspendedV1 of topics.UserSuspendedV1{…} does not match inferred type topics.UserRegisteredV1"},
		{"wronghandler", "does not match inferred type func(context.Context, bus.Event[topics.UserRegisteredV1]) error"},
		{"misspelt", "undefined: topics.UserRegistred"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "vet", "./testdata/misuse/"+tt.fixture).CombinedOutput()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("the correct use does not compile: %v\n%s", err, out)
			case tt.want != "" && err == nil:
				t.Fatalf("compiled, want the error %q", tt.want)
			case tt.want != "" && !strings.Contains(string(out), tt.want):
				t.Fatalf("compile error does not say %q:\n%s", tt.want, out)
			}
		})
	}
}
