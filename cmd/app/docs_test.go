package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/example/monolith/platform/app"
	"github.com/example/monolith/platform/catalog"
)

var update = flag.Bool("update", false, "rewrite the generated docs instead of checking them (make docs)")

// The generated docs, relative to the repository root.
const (
	eventsDoc   = "docs/events.md"
	asyncAPIDoc = "docs/asyncapi.yaml"
	readme      = "README.md"
	// The README's flowchart sits between these lines.
	flowStart = "<!-- catalog:flow:start -->\n"
	flowEnd   = "<!-- catalog:flow:end -->\n"
)

// TestGeneratedDocs fails when docs/events.md, docs/asyncapi.yaml or the
// README's flowchart differ from what the code generates; with -update
// (make docs) it rewrites them, unless a topic's payload changed
// incompatibly without a new schema version.
func TestGeneratedDocs(t *testing.T) {
	c := docsCatalog(t)
	var events bytes.Buffer
	if err := catalog.Write(&events, c, "markdown"); err != nil {
		t.Fatal(err)
	}
	spec, err := catalog.AsyncAPI(c)
	if err != nil {
		t.Fatal(err)
	}
	newReadme, err := replaceBetween(read(t, readme), flowStart, flowEnd, "```mermaid\n"+catalog.Mermaid(c)+"```\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{eventsDoc: events.String(), asyncAPIDoc: string(spec), readme: newReadme}

	if *update {
		if breaking := breakingChanges(t, c); len(breaking) > 0 {
			t.Fatalf("not writing the docs over incompatible payload changes (raise the topic's version in bus.NewTopic):\n%s", strings.Join(breaking, "\n"))
		}
		for path, content := range want {
			if err := os.WriteFile(filepath.Join(repoRoot, path), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for path, content := range want {
		if got := read(t, path); got != content {
			t.Errorf("%s is not what the code generates: run make docs", path)
		}
	}
}

// TestEventSchemasCompatible compares every topic's payload schema with
// the one in the committed docs/asyncapi.yaml: a removed property, a
// changed type or a newly required property needs a raised schema version.
func TestEventSchemasCompatible(t *testing.T) {
	for _, change := range breakingChanges(t, docsCatalog(t)) {
		t.Errorf("%s: breaks the published contract; raise the topic's version in bus.NewTopic or make the change compatible", change)
	}
}

func breakingChanges(t *testing.T, c catalog.Catalog) []string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, asyncAPIDoc))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing published yet
	}
	if err != nil {
		t.Fatal(err)
	}
	published, err := catalog.ReadAsyncAPI(doc)
	if err != nil {
		t.Fatal(err)
	}
	return c.BreakingChanges(published)
}

// TestAsyncAPIDocumentIsValid validates the generated document against the
// official AsyncAPI 3.0.0 JSON Schema, which rejects a broken one.
func TestAsyncAPIDocumentIsValid(t *testing.T) {
	spec, err := catalog.AsyncAPI(docsCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	schema := asyncAPISchema(t)
	if err := schema.Validate(instance(t, spec)); err != nil {
		t.Fatalf("the generated AsyncAPI document is invalid: %v", err)
	}
	// AsyncAPI 2's verbs are not 3.0.0's send and receive.
	broken := bytes.Replace(spec, []byte("action: receive"), []byte("action: subscribe"), 1)
	if err := schema.Validate(instance(t, broken)); err == nil {
		t.Fatal("a document with an operation action of subscribe validated")
	}
}

func asyncAPISchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "testdata/asyncapi/3.0.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const id = "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return schema
}

// instance is a YAML document as the validator takes JSON.
func instance(t *testing.T, doc []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// docsCatalog is what the committed docs describe: the binary's contexts
// under the default configuration, with the RabbitMQ and Redis sections of
// configs/amqp.yaml and configs/redisstream.yaml, whatever the environment.
func docsCatalog(t *testing.T) catalog.Catalog {
	t.Helper()
	const amqpFile, redisFile = "configs/amqp.yaml", "configs/redisstream.yaml"
	ignoreEnvironment(t, amqpFile, redisFile)
	cfg := app.DefaultConfig()
	cfg.Bus.AMQP = loadConfig(t, amqpFile).Bus.AMQP
	cfg.Bus.Redis = loadConfig(t, redisFile).Bus.Redis
	c, err := app.Catalog(cfg, slog.Default(), contexts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// ignoreEnvironment unsets the APP_* overrides and empties the variables
// the files (from the repository root) refer to, so that their
// ${VAR:-default}s take the default.
func ignoreEnvironment(t *testing.T, files ...string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "APP_") {
			t.Setenv(name, "") // restores the value after the test
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range files {
		for _, m := range varRef.FindAllStringSubmatch(read(t, f), -1) {
			t.Setenv(m[1], "")
		}
	}
}

// loadConfig loads a configuration file by its path from the repository root.
func loadConfig(t *testing.T, path string) app.Config {
	t.Helper()
	cfg, err := app.LoadConfig(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// replaceBetween replaces what lies between the start and end lines of doc.
func replaceBetween(doc, start, end, content string) (string, error) {
	before, rest, ok := strings.Cut(doc, start)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		return "", fmt.Errorf("no %q ... %q block", strings.TrimSpace(start), strings.TrimSpace(end))
	}
	return before + start + content + end + after, nil
}

// read reads a file by its path from the repository root.
func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
