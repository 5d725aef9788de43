package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Name    string            `yaml:"name"`
	Debug   bool              `yaml:"debug"`
	Int     int               `yaml:"int"`
	Int8    int8              `yaml:"int8"`
	Int16   int16             `yaml:"int16"`
	Int32   int32             `yaml:"int32"`
	Int64   int64             `yaml:"int64"`
	Uint    uint              `yaml:"uint"`
	Uint8   uint8             `yaml:"uint8"`
	Uint16  uint16            `yaml:"uint16"`
	Uint32  uint32            `yaml:"uint32"`
	Uint64  uint64            `yaml:"uint64"`
	Ratio   float64           `yaml:"ratio"`
	Timeout time.Duration     `yaml:"timeout"`
	Tags    []string          `yaml:"tags"`
	Labels  map[string]string `yaml:"labels"`
	HTTP    httpConfig        `yaml:"http"`
	Bus     busConfig         `yaml:"bus"`

	Untagged string
	Skipped  string `yaml:"-"`
	private  string `yaml:"private"` //nolint:unused // unexported, so "private" must be an unknown key
}

type httpConfig struct {
	Addr string `yaml:"addr,omitempty"`
}

type busConfig struct {
	AMQP  amqpConfig  `yaml:"amqp"`
	Retry retryConfig `yaml:"retry"`
}

type amqpConfig struct {
	URL string `yaml:"url"`
}

type retryConfig struct {
	MaxRetries      int           `yaml:"max_retries"`
	InitialInterval time.Duration `yaml:"initial_interval"`
}

func defaults() testConfig {
	return testConfig{
		Name:    "app",
		Int:     1,
		Timeout: 5 * time.Second,
		Tags:    []string{"default"},
		Labels:  map[string]string{"team": "core"},
		HTTP:    httpConfig{Addr: ":8080"},
		Bus: busConfig{
			AMQP:  amqpConfig{URL: "amqp://guest:guest@localhost:5672/"},
			Retry: retryConfig{MaxRetries: 3, InitialInterval: 100 * time.Millisecond},
		},
		Untagged: "untouched",
		Skipped:  "untouched",
	}
}

// writeFile writes a YAML file into a temporary directory and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func setenv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want func(c *testConfig) // applied to defaults()
	}{
		{
			name: "empty file keeps defaults",
			yaml: "",
			want: func(*testConfig) {},
		},
		{
			name: "comments only keeps defaults",
			yaml: "# nothing here\n",
			want: func(*testConfig) {},
		},
		{
			name: "absent keys keep defaults",
			yaml: "name: svc\nbus:\n  retry:\n    max_retries: 7\n",
			want: func(c *testConfig) {
				c.Name = "svc"
				c.Bus.Retry.MaxRetries = 7
			},
		},
		{
			name: "null keeps default",
			yaml: "name:\ntimeout: ~\nhttp:\n",
			want: func(*testConfig) {},
		},
		{
			name: "every kind",
			yaml: `
name: svc
debug: true
int: -42
int8: -8
int16: 0x10
int32: 1_000
int64: 9223372036854775807
uint: 42
uint8: 255
uint16: 65535
uint32: 0o17
uint64: 18446744073709551615
ratio: 0.25
timeout: 1m30s
tags: [a, b]
labels:
  team: platform
  tier: "1"
http:
  addr: ":9090"
bus:
  amqp:
    url: amqp://u:p@rabbit:5672/
  retry:
    max_retries: 10
    initial_interval: 1.5s
`,
			want: func(c *testConfig) {
				c.Name = "svc"
				c.Debug = true
				c.Int = -42
				c.Int8 = -8
				c.Int16 = 16
				c.Int32 = 1000
				c.Int64 = 9223372036854775807
				c.Uint = 42
				c.Uint8 = 255
				c.Uint16 = 65535
				c.Uint32 = 15
				c.Uint64 = 18446744073709551615
				c.Ratio = 0.25
				c.Timeout = 90 * time.Second
				c.Tags = []string{"a", "b"}
				c.Labels = map[string]string{"team": "platform", "tier": "1"}
				c.HTTP.Addr = ":9090"
				c.Bus.AMQP.URL = "amqp://u:p@rabbit:5672/"
				c.Bus.Retry.MaxRetries = 10
				c.Bus.Retry.InitialInterval = 1500 * time.Millisecond
			},
		},
		{
			name: "empty sequence clears slice",
			yaml: "tags: []\n",
			want: func(c *testConfig) { c.Tags = []string{} },
		},
		{
			name: "block sequence and number as string",
			yaml: "name: 123\ntags:\n  - x\n  - 'y z'\n",
			want: func(c *testConfig) {
				c.Name = "123"
				c.Tags = []string{"x", "y z"}
			},
		},
		{
			name: "anchors and aliases",
			yaml: "name: &n shared\nhttp:\n  addr: *n\n",
			want: func(c *testConfig) {
				c.Name = "shared"
				c.HTTP.Addr = "shared"
			},
		},
		{
			name: "env var expansion",
			yaml: "name: ${CONFIG_TEST_NAME}\nbus:\n  amqp:\n    url: amqp://${CONFIG_TEST_USER}:${CONFIG_TEST_PASS}@host/\n",
			env:  map[string]string{"CONFIG_TEST_NAME": "from-env", "CONFIG_TEST_USER": "u", "CONFIG_TEST_PASS": "p"},
			want: func(c *testConfig) {
				c.Name = "from-env"
				c.Bus.AMQP.URL = "amqp://u:p@host/"
			},
		},
		{
			name: "env var default when unset",
			yaml: "name: ${CONFIG_TEST_UNSET:-fallback}\nhttp:\n  addr: \"${CONFIG_TEST_UNSET:-}\"\n",
			want: func(c *testConfig) {
				c.Name = "fallback"
				c.HTTP.Addr = ""
			},
		},
		{
			// Expansion is textual: an unquoted empty result is a YAML null.
			name: "unquoted empty expansion keeps default",
			yaml: "http:\n  addr: ${CONFIG_TEST_UNSET:-}\n",
			want: func(*testConfig) {},
		},
		{
			name: "env var default when empty",
			yaml: "name: ${CONFIG_TEST_EMPTY:-fallback}\n",
			env:  map[string]string{"CONFIG_TEST_EMPTY": ""},
			want: func(c *testConfig) { c.Name = "fallback" },
		},
		{
			name: "env var set beats default",
			yaml: "timeout: ${CONFIG_TEST_TIMEOUT:-1s}\n",
			env:  map[string]string{"CONFIG_TEST_TIMEOUT": "2m"},
			want: func(c *testConfig) { c.Timeout = 2 * time.Minute },
		},
		{
			name: "dollar escape",
			yaml: "name: \"cost $$5 and $${NOT_A_VAR} and $HOME\"\n",
			want: func(c *testConfig) { c.Name = "cost $5 and ${NOT_A_VAR} and $HOME" },
		},
		{
			name: "APP overrides",
			yaml: "name: svc\nbus:\n  retry:\n    max_retries: 7\n",
			env: map[string]string{
				"APP_NAME":                          "env-name",
				"APP_INT":                           "99",
				"APP_UINT8":                         "7",
				"APP_RATIO":                         "1.5",
				"APP_DEBUG":                         "true",
				"APP_TIMEOUT":                       "250ms",
				"APP_TAGS":                          "x, y ,z",
				"APP_HTTP_ADDR":                     ":1234",
				"APP_BUS_AMQP_URL":                  "amqp://env/",
				"APP_BUS_RETRY_MAX_RETRIES":         "12",
				"APP_BUS_RETRY_INITIAL_INTERVAL":    "2s",
				"APP_UNKNOWN_SETTING":               "ignored",
				"APP_LABELS":                        "ignored",
				"APP_UNTAGGED":                      "ignored",
				"APP_SKIPPED":                       "ignored",
				"APP_BUS_RETRY_MAX_RETRIES_TYPO_XX": "ignored",
			},
			want: func(c *testConfig) {
				c.Name = "env-name"
				c.Int = 99
				c.Uint8 = 7
				c.Ratio = 1.5
				c.Debug = true
				c.Timeout = 250 * time.Millisecond
				c.Tags = []string{"x", "y", "z"}
				c.HTTP.Addr = ":1234"
				c.Bus.AMQP.URL = "amqp://env/"
				c.Bus.Retry.MaxRetries = 12
				c.Bus.Retry.InitialInterval = 2 * time.Second
			},
		},
		{
			name: "empty APP value clears string and slice",
			yaml: "name: svc\n",
			env:  map[string]string{"APP_NAME": "", "APP_TAGS": ""},
			want: func(c *testConfig) {
				c.Name = ""
				c.Tags = []string{}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			got := defaults()
			if err := Load(writeFile(t, tt.yaml), &got); err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadWithoutFile(t *testing.T) {
	t.Setenv("APP_HTTP_ADDR", ":7070")
	got := defaults()
	if err := Load("", &got); err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := defaults()
	want.HTTP.Addr = ":7070"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string // substring of the error text
	}{
		{
			name: "unset variable",
			yaml: "name: a\nbus:\n  amqp:\n    url: ${CONFIG_TEST_MISSING}\n",
			want: `config: environment variable "CONFIG_TEST_MISSING" is not set (line 4)`,
		},
		{
			name: "unterminated reference",
			yaml: "name: ${CONFIG_TEST_NAME\n",
			want: `config: unterminated "${" (line 1)`,
		},
		{
			name: "invalid reference",
			yaml: "name: ${CONFIG-TEST}\n",
			want: `config: invalid variable reference "${CONFIG-TEST}" (line 1)`,
		},
		{
			name: "unknown top-level key",
			yaml: "name: a\nnmae: b\n",                  //nolint:misspell // a misspelt key is the case under test
			want: `config: unknown key "nmae" (line 2)`, //nolint:misspell // the same misspelt key
		},
		{
			name: "unknown nested key",
			yaml: "name: a\nbus:\n  retry:\n    max_retries: 1\n\n  amqp:\n    ulr: amqp://x/\n",
			want: `config: unknown key "bus.amqp.ulr" (line 7)`,
		},
		{
			name: "ignored field is unknown",
			yaml: "Untagged: x\n",
			want: `config: unknown key "Untagged" (line 1)`,
		},
		{
			name: "unexported field is unknown",
			yaml: "private: x\n",
			want: `config: unknown key "private" (line 1)`,
		},
		{
			name: "duplicate key",
			yaml: "http:\n  addr: a\n  addr: b\n",
			want: `config: duplicate key "http.addr" (line 3)`,
		},
		{
			name: "malformed duration",
			yaml: "bus:\n  retry:\n    initial_interval: 5 parsecs\n",
			want: `config: bus.retry.initial_interval: invalid duration "5 parsecs" (line 3)`,
		},
		{
			name: "integer duration",
			yaml: "timeout: 30\n",
			want: `config: timeout: invalid duration "30"`,
		},
		{
			name: "malformed int",
			yaml: "bus:\n  retry:\n    max_retries: lots\n",
			want: `config: bus.retry.max_retries: invalid integer "lots": invalid syntax (line 3)`,
		},
		{
			name: "int out of range",
			yaml: "int8: 300\n",
			want: `config: int8: invalid integer "300": value out of range`,
		},
		{
			name: "negative uint",
			yaml: "uint: -1\n",
			want: `config: uint: invalid unsigned integer "-1"`,
		},
		{
			name: "malformed float",
			yaml: "ratio: half\n",
			want: `config: ratio: invalid number "half"`,
		},
		{
			name: "malformed bool",
			yaml: "debug: maybe\n",
			want: `config: debug: invalid bool "maybe"`,
		},
		{
			name: "scalar for struct",
			yaml: "bus: amqp://x/\n",
			want: `config: bus: expected a mapping, got a scalar (line 1)`,
		},
		{
			name: "mapping for scalar",
			yaml: "name:\n  first: a\n",
			want: `config: name: expected a scalar, got a mapping (line 2)`,
		},
		{
			name: "scalar for slice",
			yaml: "tags: a,b\n",
			want: `config: tags: expected a sequence, got a scalar (line 1)`,
		},
		{
			name: "nested sequence in slice",
			yaml: "tags:\n  - [a]\n",
			want: `config: tags[0]: expected a scalar, got a sequence (line 2)`,
		},
		{
			name: "mapping value for map",
			yaml: "labels:\n  team:\n    a: b\n",
			want: `config: labels.team: expected a scalar, got a mapping (line 3)`,
		},
		{
			name: "sequence at root",
			yaml: "- a\n",
			want: `config: (root): expected a mapping, got a sequence (line 1)`,
		},
		{
			name: "syntax error",
			yaml: "name: a\n  bad: [\n",
			want: "config.yaml: yaml: ",
		},
		{
			name: "bad APP int",
			env:  map[string]string{"APP_BUS_RETRY_MAX_RETRIES": "ten"},
			want: `config: APP_BUS_RETRY_MAX_RETRIES (bus.retry.max_retries): invalid integer "ten": invalid syntax`,
		},
		{
			name: "bad APP duration",
			env:  map[string]string{"APP_BUS_RETRY_INITIAL_INTERVAL": "5"},
			want: `config: APP_BUS_RETRY_INITIAL_INTERVAL (bus.retry.initial_interval): invalid duration "5"`,
		},
		{
			name: "bad APP bool",
			env:  map[string]string{"APP_DEBUG": "yes please"},
			want: `config: APP_DEBUG (debug): invalid bool "yes please"`,
		},
		{
			name: "bad APP empty int",
			env:  map[string]string{"APP_INT": ""},
			want: `config: APP_INT (int): invalid integer ""`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			cfg := defaults()
			err := Load(writeFile(t, tt.yaml), &cfg)
			if err == nil {
				t.Fatalf("Load: want error containing %q, got nil", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error:\n got  %q\n want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configs", "x.yaml")
	cfg := defaults()
	err := Load(path, &cfg)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load: want fs.ErrNotExist, got %v", err)
	}
	if want := "config: open " + path + ": no such file or directory"; err.Error() != want {
		t.Errorf("Load error = %q, want %q", err, want)
	}
}

func TestLoadBadDestination(t *testing.T) {
	var s string
	for _, dst := range []any{nil, defaults(), &s, (*testConfig)(nil)} {
		if err := Load("", dst); err == nil {
			t.Errorf("Load(%T): want error, got nil", dst)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"amqp://guest:guest@localhost:5672/", "amqp://guest:xxxxx@localhost:5672/"},
		{"redis://:pw@host:6379/0", "redis://:xxxxx@host:6379/0"},
		{"postgres://u:p@h/db?sslmode=disable", "postgres://u:xxxxx@h/db?sslmode=disable"},
		{"postgres://h/db?user=u&password=secret&sslmode=disable", "postgres://h/db?user=u&password=xxxxx&sslmode=disable"},
		{"host=h user=u password=secret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='s e cret' dbname=d", "host=h password=xxxxx dbname=d"},
		{"amqp://guest@localhost:5672/", "amqp://guest@localhost:5672/"},
		{"amqp://localhost:5672/", "amqp://localhost:5672/"},
		{"redis://host:6379/0", "redis://host:6379/0"},
		{"host=h user=u dbname=d", "host=h user=u dbname=d"},
		{"file:data.db?_pragma=busy_timeout(5000)", "file:data.db?_pragma=busy_timeout(5000)"},
		{"", ""},
		{"amqp://user:p/ss@host:5672/", "amqp://xxxxx@host:5672/"},
		{"amqp://user:bad%zz@host/", "amqp://xxxxx@host/"},
		{"postgres://u:p@h/db?sslmode=verify-full&sslrootcert=/ca.pem&sslkey=/k.pem&sslpassword=keypass",
			"postgres://u:xxxxx@h/db?sslmode=verify-full&sslrootcert=/ca.pem&sslkey=/k.pem&sslpassword=xxxxx"},
		{"host=h sslmode=verify-ca sslrootcert=/ca.pem sslpassword=keypass", "host=h sslmode=verify-ca sslrootcert=/ca.pem sslpassword=xxxxx"},
		{"amqps://app:pw@rabbit:5671/?cacertfile=/ca.pem&certfile=/c.pem&keyfile=/k.pem", "amqps://app:xxxxx@rabbit:5671/?cacertfile=/ca.pem&certfile=/c.pem&keyfile=/k.pem"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
