package arch_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The architecture rules, written once for every context ({ctx} below), so a
// new context needs no rule edits. The layer rules and the rules on calls
// (handlers, publishing) read non-test files only: tests may set up what
// they need. The other rules on imports read tests too.
//   - a file under contexts/{ctx} imports no other context;
//   - of this module, it imports only platform/... and contexts/{ctx}/...;
//   - nothing outside contexts/{ctx} imports contexts/{ctx}/internal/...
//     (cmd/app included);
//   - layers: contexts/{ctx}/internal/domain imports only the standard
//     library, internal/app does not import internal/ports, internal/ports
//     does not import internal/store;
//   - platform never imports a context;
//   - cmd/app wires every context;
//   - contexts build handlers with outbox.NewHandler or NewPatternHandler
//     (exactly-once effects), never bus's, so idempotency is the default, not a choice;
//   - contexts/{ctx} reaches its tables through store.New(d.Q(ctx)), which
//     joins the transaction ctx carries: store.New on anything else reads
//     outside a handler's transaction (and on SQLite's single connection
//     waits for it until the handler times out);
//   - contexts/{ctx} publishes only its own topics: every topic it passes to
//     a publish function of platform/bus (one that takes a Topic and builds
//     no Handler: Publish, NewMessage) is a topics.X whose name, declared in
//     platform/topics, starts with "{ctx}.";
//   - platform/topics/{name}.go declares only topics named {name}.*;
//   - platform publishes no topics.X: it owns no topic.

// module is this module's path, from go.mod, so that the rules hold in a
// copy of the template under another path.
var module = func() string {
	data, err := os.ReadFile("go.mod")
	if err != nil {
		panic(err)
	}
	for line := range strings.Lines(string(data)) {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(mod)
		}
	}
	panic("go.mod has no module line")
}()

func TestArchitecture(t *testing.T) {
	for _, v := range violations(t, ".") {
		t.Error(v)
	}
}

// TestRulesRejectViolations proves the rules bite, on a fixture that breaks
// each, and only report what breaks them.
func TestRulesRejectViolations(t *testing.T) {
	got := violations(t, "testdata/arch")
	want := []string{
		"contexts/alpha/alpha.go imports another context: " + module + "/contexts/beta",
		"contexts/alpha/internal/domain/domain.go: domain imports non-standard " + module + "/platform/bus",
		"contexts/beta/beta.go imports " + module + "/cmd/app, outside platform/ and its own context",
		"platform/bus/bus.go: platform imports a context: " + module + "/contexts/alpha",
		"cmd/app does not wire context alpha",
		"contexts/beta/beta.go:8: bus.NewHandler in a context: use outbox.NewHandler",
		"contexts/beta/beta.go:9: bus.NewPatternHandler in a context: use outbox.NewPatternHandler",
		"contexts/alpha/publish.go:12: alpha publishes topic, not a topic declared in platform/topics",
		"contexts/alpha/publish.go:13: alpha publishes beta.thing.happened, a topic of beta",
		"platform/topics/alpha.go:7: alpha.go declares beta.thing.misfiled, a topic of beta",
		"platform/setting/setting.go:11: platform publishes alpha.thing.happened, a topic of alpha",
		"contexts/alpha/internal/app/app.go: app imports ports: " + module + "/contexts/alpha/internal/ports",
		"contexts/alpha/internal/ports/ports.go: ports imports store: " + module + "/contexts/alpha/internal/store",
		"cmd/app/main_test.go imports alpha's internals: " + module + "/contexts/alpha/internal/domain",
		"contexts/alpha/internal/app/get.go:14: store.New(s.db) bypasses the ambient transaction: use store.New(d.Q(ctx))",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("rule not enforced, missing violation %q", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected violation %q", g)
		}
	}
}

func violations(t *testing.T, root string) []string {
	t.Helper()
	tr := parseTree(t, root)
	topicNames, out := declaredTopics(tr)
	publishers := publishFuncs(tr)
	contexts, err := os.ReadDir(filepath.Join(root, "contexts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range contexts {
		if c.IsDir() {
			out = append(out, contextViolations(tr, c.Name(), topicNames, publishers)...)
		}
	}
	for _, f := range tr.files {
		if !f.in("platform") {
			continue
		}
		for _, imp := range f.imports() {
			if strings.HasPrefix(imp, module+"/contexts/") {
				out = append(out, fmt.Sprintf("%s: platform imports a context: %s", f.path, imp))
			}
		}
		if f.test {
			continue
		}
		for _, topic := range f.published(publishers) {
			v := f.topicVar(topic)
			switch name, ok := topicNames[v]; {
			case ok:
				out = append(out, fmt.Sprintf("%s: platform publishes %s, a topic of %s", tr.pos(f, topic), name, owner(name)))
			case v != "":
				out = append(out, fmt.Sprintf("%s: platform publishes topics.%s", tr.pos(f, topic), v))
			}
		}
	}
	return out
}

// contextViolations checks the rules written for the context ctx.
func contextViolations(tr tree, ctx string, topicNames map[string]string, publishers map[string]int) []string {
	var out []string
	dir, own := "contexts/"+ctx, module+"/contexts/"+ctx
	if !slices.ContainsFunc(tr.files, func(f file) bool {
		return path.Dir(f.path) == "cmd/app" && !f.test && slices.Contains(f.imports(), own)
	}) {
		out = append(out, fmt.Sprintf("cmd/app does not wire context %s", ctx))
	}
	for _, f := range tr.files {
		inside := f.in(dir)
		for _, imp := range f.imports() {
			if !inside {
				if within(imp, own+"/internal") {
					out = append(out, fmt.Sprintf("%s imports %s's internals: %s", f.path, ctx, imp))
				}
				continue
			}
			switch {
			case strings.HasPrefix(imp, module+"/contexts/") && !within(imp, own):
				out = append(out, fmt.Sprintf("%s imports another context: %s", f.path, imp))
			case strings.HasPrefix(imp, module+"/") && !strings.HasPrefix(imp, module+"/platform/") && !within(imp, own):
				out = append(out, fmt.Sprintf("%s imports %s, outside platform/ and its own context", f.path, imp))
			}
			if f.test {
				continue
			}
			if f.in(dir+"/internal/domain") && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				out = append(out, fmt.Sprintf("%s: domain imports non-standard %s", f.path, imp))
			}
			for _, l := range []struct{ layer, notImported string }{{"app", "ports"}, {"ports", "store"}} {
				if f.in(dir+"/internal/"+l.layer) && within(imp, own+"/internal/"+l.notImported) {
					out = append(out, fmt.Sprintf("%s: %s imports %s: %s", f.path, l.layer, l.notImported, imp))
				}
			}
		}
		if !inside || f.test {
			continue
		}
		for _, fn := range []string{"NewHandler", "NewPatternHandler"} {
			for _, ref := range f.refs(module+"/platform/bus", fn) {
				out = append(out, fmt.Sprintf("%s: bus.%s in a context: use outbox.%s", tr.pos(f, ref), fn, fn))
			}
		}
		for _, call := range f.calls(own+"/internal/store", "New") {
			if len(call.Args) != 1 || !isQCall(call.Args[0]) {
				out = append(out, fmt.Sprintf("%s: store.New(%s) bypasses the ambient transaction: use store.New(d.Q(ctx))",
					tr.pos(f, call), types.ExprString(call.Args[0])))
			}
		}
		for _, topic := range f.published(publishers) {
			name, ok := topicNames[f.topicVar(topic)]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s: %s publishes %s, not a topic declared in platform/topics",
					tr.pos(f, topic), ctx, types.ExprString(topic)))
			case owner(name) != ctx:
				out = append(out, fmt.Sprintf("%s: %s publishes %s, a topic of %s", tr.pos(f, topic), ctx, name, owner(name)))
			}
		}
	}
	return out
}

// declaredTopics maps each topic variable of platform/topics to its name,
// and reports a topic declared in the file of another context.
func declaredTopics(tr tree) (map[string]string, []string) {
	names := map[string]string{}
	var out []string
	for _, f := range tr.files {
		if path.Dir(f.path) != "platform/topics" || f.test {
			continue
		}
		file := path.Base(f.path)
		for _, d := range f.ast.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i >= len(vs.Values) {
						break
					}
					call, ok := vs.Values[i].(*ast.CallExpr)
					if !ok || !f.isFunc(call.Fun, module+"/platform/bus", "NewTopic") || len(call.Args) == 0 {
						continue
					}
					lit, ok := call.Args[0].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						out = append(out, fmt.Sprintf("%s: topic %s is not named by a string literal", tr.pos(f, call), id.Name))
						continue
					}
					name, _ := strconv.Unquote(lit.Value)
					names[id.Name] = name
					if base := strings.TrimSuffix(file, ".go"); owner(name) != base {
						out = append(out, fmt.Sprintf("%s: %s declares %s, a topic of %s", tr.pos(f, lit), file, name, owner(name)))
					}
				}
			}
		}
	}
	return names, out
}

// publishFuncs finds platform/bus's publish functions, the exported ones
// that take a Topic and build no Handler, with the position of their topic
// parameter.
func publishFuncs(tr tree) map[string]int {
	funcs := map[string]int{}
	for _, f := range tr.files {
		if path.Dir(f.path) != "platform/bus" || f.test {
			continue
		}
		for _, d := range f.ast.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() ||
				(fd.Type.Results != nil && slices.ContainsFunc(fd.Type.Results.List, func(r *ast.Field) bool { return isIdent(r.Type, "Handler") })) {
				continue
			}
			i := 0
			for _, p := range fd.Type.Params.List {
				if isIdent(generic(p.Type), "Topic") {
					funcs[fd.Name.Name] = i
				}
				i += max(1, len(p.Names))
			}
		}
	}
	return funcs
}

func owner(topic string) string { return strings.SplitN(topic, ".", 2)[0] }

// within reports whether the import path imp is pkg or below it.
func within(imp, pkg string) bool { return imp == pkg || strings.HasPrefix(imp, pkg+"/") }

// generic strips type or function arguments: Topic[T] is Topic.
func generic(e ast.Expr) ast.Expr {
	switch g := e.(type) {
	case *ast.IndexExpr:
		return g.X
	case *ast.IndexListExpr:
		return g.X
	}
	return e
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// tree is every Go file under a root but those Go itself ignores (testdata,
// names starting with . or _).
type tree struct {
	fset  *token.FileSet
	files []file
}

type file struct {
	path string // relative to the root, with slashes
	ast  *ast.File
	test bool
}

func parseTree(t *testing.T, root string) tree {
	t.Helper()
	tr := tree{fset: token.NewFileSet()}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(tr.fset, p, nil, 0)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		tr.files = append(tr.files, file{filepath.ToSlash(rel), f, strings.HasSuffix(p, "_test.go")})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// pos is "path:line" of n in f.
func (tr tree) pos(f file, n ast.Node) string {
	return fmt.Sprintf("%s:%d", f.path, tr.fset.Position(n.Pos()).Line)
}

// in reports whether f is in the package directory dir or below it.
func (f file) in(dir string) bool { return strings.HasPrefix(f.path, dir+"/") }

func (f file) imports() []string {
	var out []string
	for _, s := range f.ast.Imports {
		p, _ := strconv.Unquote(s.Path.Value)
		out = append(out, p)
	}
	return out
}

// local is the name f refers to the package imp by, or "" if f does not
// import it.
func (f file) local(imp string) string {
	for _, s := range f.ast.Imports {
		if p, _ := strconv.Unquote(s.Path.Value); p == imp {
			if s.Name != nil {
				return s.Name.Name
			}
			return path.Base(imp)
		}
	}
	return ""
}

// isFunc reports whether e, its type arguments stripped, is pkg.name.
func (f file) isFunc(e ast.Expr, pkg, name string) bool {
	sel, ok := generic(e).(*ast.SelectorExpr)
	local := f.local(pkg)
	return ok && local != "" && isIdent(sel.X, local) && sel.Sel.Name == name
}

// refs lists every reference f makes to pkg.name.
func (f file) refs(pkg, name string) []ast.Node {
	var out []ast.Node
	ast.Inspect(f.ast, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && f.isFunc(sel, pkg, name) {
			out = append(out, sel)
		}
		return true
	})
	return out
}

// calls lists every call f makes to pkg.name.
func (f file) calls(pkg, name string) []*ast.CallExpr {
	var out []*ast.CallExpr
	ast.Inspect(f.ast, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok && f.isFunc(call.Fun, pkg, name) {
			out = append(out, call)
		}
		return true
	})
	return out
}

// isQCall reports whether e is a call x.Q(...).
func isQCall(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Q"
}

// published lists the topic argument of every call f makes to one of the
// publish functions of platform/bus.
func (f file) published(publishers map[string]int) []ast.Expr {
	var out []ast.Expr
	ast.Inspect(f.ast, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		for fn, i := range publishers {
			if f.isFunc(call.Fun, module+"/platform/bus", fn) && i < len(call.Args) {
				out = append(out, call.Args[i])
			}
		}
		return true
	})
	return out
}

// topicVar is X when e is topics.X, or "".
func (f file) topicVar(e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	local := f.local(module + "/platform/topics")
	if !ok || local == "" || !isIdent(sel.X, local) {
		return ""
	}
	return sel.Sel.Name
}
