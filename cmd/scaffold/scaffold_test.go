package main

import (
	"bytes"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/testenv"
)

// TestRefusesAndChangesNothing feeds bad names to a copy of the repository
// and checks each is refused with its reason and leaves every file as it was.
func TestRefusesAndChangesNothing(t *testing.T) {
	root := copyRepo(t)
	before := snapshot(t, root)
	for _, tc := range []struct{ name, aggregate, want string }{
		{"Billing", "item", "not a lower-case Go identifier"},
		{"bill-ing", "item", "not a lower-case Go identifier"},
		{"1billing", "item", "not a lower-case Go identifier"},
		{"", "item", "not a lower-case Go identifier"},
		{"type", "item", "is a Go keyword"},
		{"platform", "item", "is reserved"},
		{"internal", "item", "is reserved"},
		{"app", "item", "is reserved"},
		{"bus", "item", "is reserved"}, // a platform package, found in the tree
		{"customer", "item", `context "customer" already exists (contexts/customer)`},
		{"billing", "Invoice", `aggregate "Invoice" is not a lower-case Go identifier`},
	} {
		err := Add(root, tc.name, tc.aggregate, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%q, %q) = %v, want an error saying %q", tc.name, tc.aggregate, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, want string }{
		{"nosuch", `no context "nosuch"`},
		{"../platform", "not a lower-case Go identifier"},
		{"identity", "identity's topics are still used outside it"}, // customer handles identity.user.registered
	} {
		err := Remove(root, tc.name, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Remove(%q) = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if after := snapshot(t, root); !maps.Equal(before, after) {
		t.Fatal("a refused command changed the repository")
	}
}

func TestWireThenUnwireRestoresMain(t *testing.T) {
	src, err := os.ReadFile("../app/main.go")
	if err != nil {
		t.Fatal(err)
	}
	module, err := modulePath("../..")
	if err != nil {
		t.Fatal(err)
	}
	wired, err := wire(src, module, "billing")
	if err != nil {
		t.Fatal(err)
	}
	added := diffLines(string(src), string(wired))
	if want := []string{"\t\"" + module + "/contexts/billing\"", "\tbilling.Module,"}; !slices.Equal(added, want) {
		t.Fatalf("wire added %q, want %q", added, want)
	}
	back, err := unwire(wired, module, "billing")
	if err != nil || !bytes.Equal(back, src) {
		t.Fatalf("unwire did not restore main.go: %v\n%s", err, back)
	}
}

// TestScaffoldedContextWorks is the whole promise: in a copy of the
// repository under git, the command creates a context that touches only
// its folder, its topics file and two lines of cmd/app/main.go; that builds,
// passes its own tests and the architecture test, answers HTTP in the real
// binary and handles an event another context publishes; whose sqlc
// configuration refuses another context's table; and that the remove
// command takes away without a trace.
func TestScaffoldedContextWorks(t *testing.T) {
	testenv.RequirePostgres(t) // the generated tests run on both databases
	root := copyRepo(t)
	git(t, root, "init", "-q")
	git(t, root, "add", "-A")
	git(t, root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")

	if err := Add(root, "billing", "invoice", io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, want := git(t, root, "status", "--porcelain"), " M cmd/app/main.go\n?? contexts/billing/\n?? platform/topics/billing.go\n"; got != want {
		t.Fatalf("git status after the scaffold:\n%s\nwant:\n%s", got, want)
	}
	if got := git(t, root, "diff", "--numstat", "cmd/app/main.go"); got != "2\t0\tcmd/app/main.go\n" {
		t.Fatalf("cmd/app/main.go changed by %q, want 2 added lines", got)
	}

	goCmd(t, root, "vet", "./...")
	goCmd(t, root, "test", "-count=1", "./contexts/billing/...", ".")

	bin := filepath.Join(t.TempDir(), "app")
	goCmd(t, root, "build", "-o", bin, "./cmd/app")
	apptest.Binary = bin
	app := apptest.Start(t, filepath.Join(root, "configs", "app.yaml"), "APP_DATABASE_DSN="+filepath.Join(t.TempDir(), "app.db"))

	created := app.Expect(t, http.StatusCreated, "POST", "/api/billing/invoices", map[string]any{"reference": "r1", "amount_cents": 100})
	if created.Str("id") == "" || created.Str("reference") != "r1" {
		t.Fatalf("POST /api/billing/invoices = %s", created.Raw)
	}
	app.Expect(t, http.StatusUnprocessableEntity, "POST", "/api/billing/invoices", map[string]any{"reference": "r1", "amount_cents": 0})

	// A deal won in customer reaches billing's handler over the bus.
	user := app.Expect(t, http.StatusCreated, "POST", "/api/identity/users",
		map[string]any{"email": "ada@example.com", "name": "Ada", "password": "correct horse battery"})
	var customerID string
	apptest.Eventually(t, "the user's customer is created", func() bool {
		r := app.Do(t, "GET", "/api/customers?user_id="+user.Str("id"), nil)
		cs, _ := r.Body["customers"].([]any)
		if len(cs) == 1 {
			customerID, _ = cs[0].(map[string]any)["id"].(string)
		}
		return customerID != ""
	})
	deal := app.Expect(t, http.StatusCreated, "POST", "/api/customers/"+customerID+"/deals", map[string]any{"amount_cents": 4200, "currency": "EUR"})
	apptest.Eventually(t, "billing creates an invoice for the won deal", func() bool {
		r := app.Do(t, "GET", "/api/billing/invoices?reference="+deal.Str("id"), nil)
		invoices, _ := r.Body["invoices"].([]any)
		return len(invoices) == 1 && invoices[0].(map[string]any)["amount_cents"] == float64(4200)
	})
	app.Stop(t)

	// Isolation: billing's sqlc sees only billing's tables.
	queries := filepath.Join(root, "contexts", "billing", "internal", "store", "queries", "invoices.sql")
	orig, err := os.ReadFile(queries)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(queries, append(orig, "\n-- name: PeekCustomers :many\nSELECT id FROM customers;\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	err = generate(root, filepath.Join(root, "contexts", "billing", "internal", "store", "sqlc.yaml"))
	if err == nil || !strings.Contains(err.Error(), `relation "customers" does not exist`) {
		t.Fatalf("generating a query on customer's table = %v, want relation \"customers\" does not exist", err)
	}

	if err := Remove(root, "billing", io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := git(t, root, "status", "--porcelain"); got != "" {
		t.Fatalf("git status after removing the context:\n%s\nwant a clean tree", got)
	}
}

// copyRepo copies the repository's files (tracked and untracked, not
// ignored) into a temporary directory.
func copyRepo(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimSpace(git(t, src, "ls-files", "-co", "--exclude-standard")), "\n") {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the work tree
			}
			t.Fatal(err)
		}
		p := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		files[p] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// diffLines returns the lines of b that a does not have.
func diffLines(a, b string) []string {
	have := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		have[l]++
	}
	var added []string
	for _, l := range strings.Split(b, "\n") {
		if have[l] > 0 {
			have[l]--
			continue
		}
		added = append(added, l)
	}
	return added
}
