// Package deploy_test keeps the files that run the project outside Go in step
// with what the Go side expects: compose.yaml with the services the configs
// point at, the CI workflow with compose.yaml and .ci/run, the Dockerfile
// with go.mod and a static build.
package deploy_test

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/example/monolith/platform/app"
)

// root is the repository root: tests run in deploy/.
const root = ".."

// services are the services the tests use, which compose.yaml and CI run.
var services = []string{"postgres", "rabbitmq", "redis"}

// stepServices are services the tests use that CI starts in a step of its
// own rather than as a service container: NATS needs JetStream turned on,
// which compose does with a mounted file and a service container cannot.
var stepServices = []string{"nats"}

// tools are the services compose.yaml runs for people, not tests, so CI
// does not: Jaeger, to look at traces.
var tools = []string{"jaeger"}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     any               `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Healthcheck *healthcheck      `yaml:"healthcheck"`
}

// healthcheck is compose's; its test is a string, run by a shell as CI's
// --health-cmd is.
type healthcheck struct {
	Test        string `yaml:"test"`
	Interval    string `yaml:"interval"`
	Timeout     string `yaml:"timeout"`
	Retries     int    `yaml:"retries"`
	StartPeriod string `yaml:"start_period"`
}

// options are the docker run flags that declare the same health check.
func (h healthcheck) options() map[string]string {
	o := map[string]string{"--health-cmd": h.Test}
	for flag, v := range map[string]string{"--health-interval": h.Interval, "--health-timeout": h.Timeout, "--health-start-period": h.StartPeriod} {
		if v != "" {
			o[flag] = v
		}
	}
	if h.Retries != 0 {
		o["--health-retries"] = fmt.Sprint(h.Retries)
	}
	return o
}

type workflowFile struct {
	Jobs map[string]struct {
		Services map[string]struct {
			Image   string            `yaml:"image"`
			Env     map[string]string `yaml:"env"`
			Ports   []string          `yaml:"ports"`
			Options string            `yaml:"options"`
		} `yaml:"services"`
		Env   map[string]string `yaml:"env"`
		Steps []struct {
			Uses string            `yaml:"uses"`
			With map[string]string `yaml:"with"`
			Env  map[string]string `yaml:"env"`
			Run  string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	if got, want := slices.Sorted(maps.Keys(c.Services)), slices.Sorted(slices.Values(slices.Concat(services, stepServices, tools))); !slices.Equal(got, want) {
		t.Fatalf("compose.yaml services = %v, want %v", got, want)
	}
	for name, s := range c.Services {
		if !pinned(s.Image) {
			t.Errorf("%s: image %q is not pinned to a version (no tag, or latest)", name, s.Image)
		}
		// make up waits until the services the tests use are healthy.
		if (slices.Contains(services, name) || slices.Contains(stepServices, name)) && (s.Healthcheck == nil || s.Healthcheck.Test == "") {
			t.Errorf("%s: no healthcheck.test", name)
		}
		if s.Command != nil {
			t.Errorf("%s: sets command, which CI's service containers cannot", name)
		}
	}
}

// TestComposeServesTheConfigs checks compose.yaml publishes what the broker
// configs point at, read with the app's own loader.
func TestComposeServesTheConfigs(t *testing.T) {
	c := loadCompose(t)
	amqpCfg := loadConfig(t, "configs/amqp.yaml")
	redisCfg := loadConfig(t, "configs/redisstream.yaml")
	natsCfg := loadConfig(t, "configs/nats.yaml")

	amqpURL, err := url.Parse(amqpCfg.Bus.AMQP.URL)
	if err != nil {
		t.Fatal(err)
	}
	rabbit := c.Services["rabbitmq"]
	checkPublished(t, "rabbitmq", rabbit, amqpURL.Host)
	pass, _ := amqpURL.User.Password()
	checkEnv(t, "rabbitmq", rabbit, "RABBITMQ_DEFAULT_USER", amqpURL.User.Username())
	checkEnv(t, "rabbitmq", rabbit, "RABBITMQ_DEFAULT_PASS", pass)

	checkPublished(t, "redis", c.Services["redis"], redisCfg.Bus.Redis.Addr)
	if redisCfg.Bus.Redis.Password != "" {
		t.Errorf("configs/redisstream.yaml sets a Redis password; compose's redis requires none")
	}

	natsURL, err := url.Parse(natsCfg.Bus.NATS.URL)
	if err != nil {
		t.Fatal(err)
	}
	checkPublished(t, "nats", c.Services["nats"], natsURL.Host)

	// Every config's OTLP endpoint is Jaeger's.
	for _, file := range []string{"configs/app.yaml", "configs/amqp.yaml", "configs/redisstream.yaml", "configs/nats.yaml"} {
		endpoint, err := url.Parse(loadConfig(t, file).Telemetry.Tracing.OTLP.Endpoint)
		if err != nil {
			t.Fatalf("%s: telemetry.tracing.otlp.endpoint: %v", file, err)
		}
		checkPublished(t, "jaeger", c.Services["jaeger"], endpoint.Host)
	}

	dsns := map[string]string{amqpCfg.Database.DSN: "configs/amqp.yaml", redisCfg.Database.DSN: "configs/redisstream.yaml", natsCfg.Database.DSN: "configs/nats.yaml"}
	for dsn, file := range dsns {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("%s: database.dsn: %v", file, err)
		}
		pg := c.Services["postgres"]
		checkPublished(t, "postgres", pg, u.Host)
		checkEnv(t, "postgres", pg, "POSTGRES_USER", u.User.Username())
		checkEnv(t, "postgres", pg, "POSTGRES_DB", strings.TrimPrefix(u.Path, "/"))
		if pass, ok := u.User.Password(); ok {
			checkEnv(t, "postgres", pg, "POSTGRES_PASSWORD", pass)
		} else {
			checkEnv(t, "postgres", pg, "POSTGRES_HOST_AUTH_METHOD", "trust")
		}
	}
}

// TestWorkflow checks CI runs what .ci/run runs, on the services of
// compose.yaml.
func TestWorkflow(t *testing.T) {
	var w workflowFile
	decode(t, ".github/workflows/ci.yml", &w)
	command := ciCommand(t)
	c := loadCompose(t)

	runs := 0
	for jobName, job := range w.Jobs {
		for _, step := range job.Steps {
			if strings.HasPrefix(step.Uses, "actions/setup-go@") && step.With["go-version-file"] != "go.mod" {
				t.Errorf("job %s: setup-go takes its version from %q, want go.mod", jobName, step.With["go-version-file"])
			}
			if strings.TrimSpace(step.Run) != command {
				continue
			}
			runs++
			require := job.Env["REQUIRE_SERVICES"]
			if v, ok := step.Env["REQUIRE_SERVICES"]; ok {
				require = v
			}
			if require != "1" {
				t.Errorf("job %s: %q runs without REQUIRE_SERVICES=1", jobName, command)
			}
			if got := slices.Sorted(maps.Keys(job.Services)); !slices.Equal(got, services) {
				t.Errorf("job %s: services = %v, want %v", jobName, got, services)
			}
		}
		for name, s := range job.Services {
			want, ok := c.Services[name]
			if !ok {
				t.Errorf("job %s: service %s is not in compose.yaml", jobName, name)
				continue
			}
			if s.Image != want.Image {
				t.Errorf("job %s: %s: image %q, compose.yaml has %q", jobName, name, s.Image, want.Image)
			}
			if !maps.Equal(s.Env, want.Environment) {
				t.Errorf("job %s: %s: env %v, compose.yaml has %v", jobName, name, s.Env, want.Environment)
			}
			if got, want := publishedPorts(s.Ports), publishedPorts(want.Ports); !slices.Equal(got, want) {
				t.Errorf("job %s: %s: ports %v, compose.yaml publishes %v", jobName, name, got, want)
			}
			opts, err := options(s.Options)
			if err != nil {
				t.Errorf("job %s: %s: options: %v", jobName, name, err)
			} else if want.Healthcheck != nil && !maps.Equal(opts, want.Healthcheck.options()) {
				t.Errorf("job %s: %s: options %v, compose.yaml's healthcheck is %v", jobName, name, opts, want.Healthcheck.options())
			}
		}
	}
	if runs != 1 {
		t.Errorf("%d workflow steps run %q (.ci/run's command), want 1", runs, command)
	}
}

// ciCommand is the make command .ci/run ends with.
func ciCommand(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".ci/run"))
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "make ") {
			command = line
		}
	}
	if command == "" {
		t.Fatal(".ci/run runs no make command")
	}
	if !strings.Contains(string(data), "\nexport REQUIRE_SERVICES=1\n") {
		t.Error(".ci/run does not export REQUIRE_SERVICES=1")
	}
	return command
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decode(t, "compose.yaml", &c)
	return c
}

// loadConfig reads a file of configs/ as the app would with no environment
// overrides: what the file itself points at.
func loadConfig(t *testing.T, name string) app.Config {
	t.Helper()
	path := filepath.Join(root, name)
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		ref := "${" + k
		if strings.HasPrefix(k, "APP_") || strings.Contains(string(text), ref+"}") || strings.Contains(string(text), ref+":-") {
			t.Setenv(k, "") // restores it after the test
			_ = os.Unsetenv(k)
		}
	}
	cfg, err := app.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func decode(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// pinned reports whether image names a version: a digest, or a tag other
// than latest that has a version number in it.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return false // no tag: latest
	}
	tag := image[i+1:]
	return tag != "latest" && strings.ContainsAny(tag, "0123456789")
}

// checkPublished checks s publishes hostPort (host:port) on the host;
// localhost is 127.0.0.1.
func checkPublished(t *testing.T, name string, s composeService, hostPort string) {
	t.Helper()
	host := hostOf(hostPort)
	if host == "localhost" {
		host = "127.0.0.1"
	}
	for _, p := range s.Ports {
		ip, published, _ := splitPort(p)
		if published == portOf(hostPort) && (ip == "" || ip == host) {
			return
		}
	}
	t.Errorf("%s: the configs point at %s, which ports %v does not publish", name, hostPort, s.Ports)
}

func checkEnv(t *testing.T, name string, s composeService, key, want string) {
	t.Helper()
	if got := s.Environment[key]; got != want {
		t.Errorf("%s: environment %s = %q, the configs want %q", name, key, got, want)
	}
}

// splitPort splits compose's short port syntax [IP:]PUBLISHED:TARGET.
func splitPort(p string) (ip, published, target string) {
	parts := strings.Split(p, ":")
	switch len(parts) {
	case 3:
		return parts[0], parts[1], parts[2]
	case 2:
		return "", parts[0], parts[1]
	default:
		return "", "", p
	}
}

// publishedPorts are ports as PUBLISHED:TARGET, whatever address they are
// published on (CI's service containers take no address).
func publishedPorts(ports []string) []string {
	var out []string
	for _, p := range ports {
		_, published, target := splitPort(p)
		out = append(out, published+":"+target)
	}
	return out
}

func hostOf(hostPort string) string { h, _, _ := strings.Cut(hostPort, ":"); return h }
func portOf(hostPort string) string { _, p, _ := strings.Cut(hostPort, ":"); return p }

// options parses docker run flags written as --flag value or --flag=value.
func options(s string) (map[string]string, error) {
	words, err := shellWords(s)
	if err != nil {
		return nil, err
	}
	o := map[string]string{}
	for i := 0; i < len(words); i++ {
		flag, value, ok := strings.Cut(words[i], "=")
		if !strings.HasPrefix(flag, "--") {
			return nil, fmt.Errorf("%q is not a --flag", words[i])
		}
		if !ok {
			if i+1 == len(words) {
				return nil, fmt.Errorf("%s has no value", flag)
			}
			i++
			value = words[i]
		}
		o[flag] = value
	}
	return o, nil
}

// shellWords splits s into words as a POSIX shell would, for the quoting
// these files use: single and double quotes; escapes, expansions and
// operators are reported as errors.
func shellWords(s string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == '"' && strings.ContainsRune(`\$`+"`", r):
			return nil, fmt.Errorf("unsupported shell syntax %q in %q", r, s)
		case quote != 0:
			word.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case strings.ContainsRune(`\$&|;<>()`+"`", r):
			return nil, fmt.Errorf("unsupported shell syntax %q in %q", r, s)
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c in %q", quote, s)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
