package apptest

import "testing"

func TestFreeAddrsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range FreeAddrs(t, 200) {
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
}
