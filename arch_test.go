package arch_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The architecture rules, written once for every context ({ctx} below), so a
// new context needs no rule edits:
//   - a file under contexts/{ctx} imports no other context;
//   - of this module, it imports only platform/... and contexts/{ctx}/...;
//   - contexts/{ctx}/internal/domain imports only the standard library;
//   - platform never imports a context;
//   - cmd/app wires every context;
//   - contexts build handlers with outbox.NewHandler (exactly-once effects),
//     never bus.NewHandler, so idempotency is the default, not a choice.

const module = "github.com/example/monolith"

func TestArchitecture(t *testing.T) {
	for _, v := range violations(t, ".") {
		t.Error(v)
	}
}

// TestRulesRejectViolations proves the rules bite, on a fixture that breaks each.
func TestRulesRejectViolations(t *testing.T) {
	got := strings.Join(violations(t, "testdata/arch"), "\n")
	for _, want := range []string{
		"contexts/alpha/alpha.go imports another context: " + module + "/contexts/beta",
		"contexts/alpha/internal/domain/domain.go: domain imports non-standard " + module + "/platform/bus",
		"contexts/beta/beta.go imports " + module + "/cmd/app, outside platform/ and its own context",
		"platform/bus/bus.go: platform imports a context: " + module + "/contexts/alpha",
		"cmd/app does not wire context alpha",
		"contexts/beta/beta.go:8: bus.NewHandler in a context: use outbox.NewHandler",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rule not enforced, missing violation %q in:\n%s", want, got)
		}
	}
}

func violations(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	contexts, err := os.ReadDir(filepath.Join(root, "contexts"))
	if err != nil {
		t.Fatal(err)
	}
	wired := imports(t, filepath.Join(root, "cmd", "app"))
	for _, c := range contexts {
		if !c.IsDir() {
			continue
		}
		ctx := c.Name()
		if !slices.ContainsFunc(wired, func(i fileImport) bool { return i.path == module+"/contexts/"+ctx }) {
			out = append(out, fmt.Sprintf("cmd/app does not wire context %s", ctx))
		}
		for _, call := range calls(t, filepath.Join(root, "contexts", ctx), "bus", "NewHandler") {
			rel, _ := filepath.Rel(root, call)
			out = append(out, fmt.Sprintf("%s: bus.NewHandler in a context: use outbox.NewHandler", rel))
		}
		for _, imp := range imports(t, filepath.Join(root, "contexts", ctx)) {
			rel, _ := filepath.Rel(root, imp.file)
			own := module + "/contexts/" + ctx
			switch {
			case strings.HasPrefix(imp.path, module+"/contexts/") && imp.path != own && !strings.HasPrefix(imp.path, own+"/"):
				out = append(out, fmt.Sprintf("%s imports another context: %s", rel, imp.path))
			case strings.HasPrefix(imp.path, module+"/") && !strings.HasPrefix(imp.path, module+"/platform/") &&
				imp.path != own && !strings.HasPrefix(imp.path, own+"/"):
				out = append(out, fmt.Sprintf("%s imports %s, outside platform/ and its own context", rel, imp.path))
			}
			if strings.Contains(filepath.ToSlash(rel), "/internal/domain/") && strings.Contains(strings.SplitN(imp.path, "/", 2)[0], ".") &&
				imp.path != own+"/internal/domain" { // its own external tests may import it
				out = append(out, fmt.Sprintf("%s: domain imports non-standard %s", rel, imp.path))
			}
		}
	}
	for _, imp := range imports(t, filepath.Join(root, "platform")) {
		if strings.HasPrefix(imp.path, module+"/contexts/") {
			rel, _ := filepath.Rel(root, imp.file)
			out = append(out, fmt.Sprintf("%s: platform imports a context: %s", rel, imp.path))
		}
	}
	return out
}

type fileImport struct{ file, path string }

// imports lists the imports of every Go file under dir, tests included.
func imports(t *testing.T, dir string) []fileImport {
	t.Helper()
	var out []fileImport
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, s := range f.Imports {
			p, _ := strconv.Unquote(s.Path.Value)
			out = append(out, fileImport{path, p})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// calls lists "file:line" of every call to pkg.fn under dir, tests excluded.
func calls(t *testing.T, dir, pkg, fn string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == pkg && sel.Sel.Name == fn {
					out = append(out, fmt.Sprintf("%s:%d", path, fset.Position(sel.Pos()).Line))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
