package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/fx"
)

type appConfig struct {
	Name     string   `yaml:"name"`
	Contexts Sections `yaml:"contexts"`
}

type billingConfig struct {
	Cost  int         `yaml:"cost"`
	Tags  []string    `yaml:"tags"`
	Retry retryConfig `yaml:"retry"`
}

func billingDefaults() billingConfig {
	return billingConfig{Cost: 10, Tags: []string{"default"}, Retry: retryConfig{MaxRetries: 3}}
}

func (c billingConfig) Validate() error {
	var errs []error
	if c.Cost < 4 || c.Cost > 31 {
		errs = append(errs, fmt.Errorf("cost: must be 4 to 31, got %d", c.Cost))
	}
	if c.Retry.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("retry.max_retries: must not be negative, got %d", c.Retry.MaxRetries))
	}
	return errors.Join(errs...)
}

// claimant is a context module claiming section name and reading nothing.
func claimant(name string) fx.Option {
	return fx.Module(name, Section(name, billingDefaults()))
}

// billing is a context module claiming section billing; it hands what it
// read to the root as a *billingConfig, since the section itself is private.
var billing = fx.Module("billing",
	Section("billing", billingDefaults()),
	fx.Provide(func(c billingConfig) *billingConfig { return &c }),
)

// start loads yaml ("" for no file) and starts an app of the given modules
// the way the platform does; with populate, it returns billing's section.
func start(t *testing.T, yaml string, populate bool, modules ...fx.Option) (billingConfig, error) {
	t.Helper()
	path := ""
	if yaml != "" {
		path = writeFile(t, yaml)
	}
	var cfg appConfig
	if err := Load(path, &cfg); err != nil {
		return billingConfig{}, err
	}
	var got *billingConfig
	opts := []fx.Option{fx.NopLogger, fx.Supply(cfg.Contexts), CheckSections, fx.Options(modules...)}
	if populate {
		opts = append(opts, fx.Populate(&got))
	}
	if err := fx.New(opts...).Err(); err != nil {
		return billingConfig{}, err
	}
	if got == nil {
		return billingConfig{}, nil
	}
	return *got, nil
}

func TestSection(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want func(c *billingConfig) // applied to billingDefaults()
	}{
		{
			name: "no file keeps defaults",
			want: func(*billingConfig) {},
		},
		{
			name: "absent section keeps defaults",
			yaml: "name: app\n",
			want: func(*billingConfig) {},
		},
		{
			name: "null contexts keeps defaults",
			yaml: "contexts:\n",
			want: func(*billingConfig) {},
		},
		{
			name: "null section keeps defaults",
			yaml: "contexts:\n  billing:\n",
			want: func(*billingConfig) {},
		},
		{
			name: "section keys override, absent keys keep defaults",
			yaml: "contexts:\n  billing:\n    cost: 12\n    retry:\n      initial_interval: 2s\n",
			want: func(c *billingConfig) {
				c.Cost = 12
				c.Retry.InitialInterval = 2e9
			},
		},
		{
			name: "variables expand inside a section",
			yaml: "contexts:\n  billing:\n    cost: ${CONFIG_TEST_COST:-5}\n",
			want: func(c *billingConfig) { c.Cost = 5 },
		},
		{
			name: "APP variables override the section",
			yaml: "contexts:\n  billing:\n    cost: 12\n    tags: [a]\n",
			env: map[string]string{
				"APP_CONTEXTS_BILLING_COST":              "4",
				"APP_CONTEXTS_BILLING_RETRY_MAX_RETRIES": "7",
				"APP_BILLING_COST":                       "ignored",
				"APP_CONTEXTS_OTHER_COST":                "ignored",
			},
			want: func(c *billingConfig) {
				c.Cost = 4
				c.Tags = []string{"a"}
				c.Retry.MaxRetries = 7
			},
		},
		{
			name: "APP variables override without a section",
			yaml: "name: app\n",
			env:  map[string]string{"APP_CONTEXTS_BILLING_COST": "30", "APP_CONTEXTS_BILLING_TAGS": "x,y"},
			want: func(c *billingConfig) {
				c.Cost = 30
				c.Tags = []string{"x", "y"}
			},
		},
		{
			name: "APP variables override without a file",
			env:  map[string]string{"APP_CONTEXTS_BILLING_COST": "6"},
			want: func(c *billingConfig) { c.Cost = 6 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			got, err := start(t, tt.yaml, true, billing)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			want := billingDefaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestSectionErrors(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		modules []fx.Option // default: billing
		want    string      // the whole error
	}{
		{
			name: "unknown key in a section",
			yaml: "contexts:\n  billing:\n    cost: 5\n    csot: 6\n",
			want: `config: unknown key "contexts.billing.csot" (line 4)`,
		},
		{
			name: "unknown nested key in a section",
			yaml: "contexts:\n  billing:\n    retry:\n      max_retires: 1\n",
			want: `config: unknown key "contexts.billing.retry.max_retires" (line 4)`,
		},
		{
			name: "bad value in a section",
			yaml: "name: app\ncontexts:\n  billing:\n    cost: lots\n",
			want: `config: contexts.billing.cost: invalid integer "lots": invalid syntax (line 4)`,
		},
		{
			name: "scalar for a section",
			yaml: "contexts:\n  billing: 12\n",
			want: `config: contexts.billing: expected a mapping, got a scalar (line 2)`,
		},
		{
			name: "bad APP variable",
			env:  map[string]string{"APP_CONTEXTS_BILLING_COST": "x"},
			want: `config: APP_CONTEXTS_BILLING_COST (contexts.billing.cost): invalid integer "x": invalid syntax`,
		},
		{
			name: "invalid value named by its full key",
			yaml: "contexts:\n  billing:\n    cost: 2\n",
			want: `config: contexts.billing.cost: must be 4 to 31, got 2`,
		},
		{
			name: "invalid APP variable without a section",
			env:  map[string]string{"APP_CONTEXTS_BILLING_COST": "32"},
			want: `config: contexts.billing.cost: must be 4 to 31, got 32`,
		},
		{
			name: "every joined validation error named by its full key",
			yaml: "contexts:\n  billing:\n    cost: 2\n    retry:\n      max_retries: -1\n",
			want: "config: contexts.billing.cost: must be 4 to 31, got 2\n" +
				"contexts.billing.retry.max_retries: must not be negative, got -1",
		},
		{
			name: "unclaimed section",
			yaml: "contexts:\n  billing:\n    cost: 5\n  billin:\n    cost: 5\n",
			want: `config: unknown key "contexts.billin" (line 4)`,
		},
		{
			name: "unclaimed null section",
			yaml: "contexts:\n  billin:\n",
			want: `config: unknown key "contexts.billin" (line 2)`,
		},
		{
			name:    "first unclaimed section in file order",
			yaml:    "contexts:\n  zeta: {}\n  alpha: {}\n  mu: {}\n  beta: {}\n",
			modules: []fx.Option{},
			want:    `config: unknown key "contexts.zeta" (line 2)`,
		},
		{
			name:    "first invalid section in file order",
			yaml:    "contexts:\n  zeta:\n    cost: 1\n  alpha:\n    cost: 2\n  mu:\n    cost: 3\n",
			modules: []fx.Option{claimant("alpha"), claimant("mu"), claimant("zeta")},
			want:    `config: contexts.zeta.cost: must be 4 to 31, got 1`,
		},
		{
			name:    "claimed section checked though nothing reads it",
			yaml:    "contexts:\n  billing:\n    cost: 2\n",
			modules: []fx.Option{claimant("billing")},
			want:    `config: contexts.billing.cost: must be 4 to 31, got 2`,
		},
		{
			name:    "section claimed twice",
			modules: []fx.Option{billing, fx.Module("other", Section("billing", billingDefaults()))},
			want:    `config: section "contexts.billing" is claimed by two modules`,
		},
		{
			name: "contexts is not a mapping",
			yaml: "contexts: billing\n",
			want: `config: contexts: expected a mapping, got a scalar (line 1)`,
		},
		{
			name: "duplicate section",
			yaml: "contexts:\n  billing: {}\n  billing: {}\n",
			want: `config: duplicate key "contexts.billing" (line 3)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			modules := tt.modules
			if modules == nil {
				modules = []fx.Option{billing}
			}
			_, err := start(t, tt.yaml, false, modules...)
			if err == nil {
				t.Fatalf("start: want error %q, got nil", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("start error:\n got  %q\n want %q", err, tt.want)
			}
		})
	}
}

// TestSectionIsPrivate: only the claiming module sees its section.
func TestSectionIsPrivate(t *testing.T) {
	err := fx.New(fx.NopLogger, fx.Supply(Sections{}), claimant("billing"),
		fx.Invoke(func(billingConfig) {}),
	).Err()
	if err == nil || !strings.Contains(err.Error(), "missing type: config.billingConfig") {
		t.Fatalf("root reading billing's section: %v, want a missing type", err)
	}
}
