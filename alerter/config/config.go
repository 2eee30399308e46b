// Package config is the alerter's YAML file: defaults, strict loading
// (unknown keys are errors) and validation whose errors name the key.
// Secrets are never in the file: only env/file references.
package config

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/packetworks/flowsentry/alerter/audit"
	"github.com/packetworks/flowsentry/alerter/console/history"
	"github.com/packetworks/flowsentry/alerter/consume"
	"github.com/packetworks/flowsentry/alerter/dispatch"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/schemas/chclient"
	schemacfg "github.com/packetworks/flowsentry/schemas/config"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
)

// Config is alerter.yaml.
type Config struct {
	LogLevel   string             `yaml:"log_level"`
	Listen     string             `yaml:"listen"`   // /metrics, /healthz, /readyz, /api/v1/
	Instance   string             `yaml:"instance"` // names this alerter in audit rows; default hostname
	Kafka      kafkaclient.Config `yaml:"kafka"`
	Consumer   consume.Config     `yaml:"consumer"`
	ClickHouse chclient.Config    `yaml:"clickhouse"`
	Audit      audit.Config       `yaml:"audit"`
	State      State              `yaml:"state"`
	Incidents  dispatch.Config    `yaml:"incidents"`
	Inventory  Inventory          `yaml:"inventory"`
	Links      notify.Links       `yaml:"links"`
	API        API                `yaml:"api"`
	Console    Console            `yaml:"console"`
	// Retry is the default policy of every receiver.
	Retry        notify.Retry            `yaml:"retry"`
	Route        route.Config            `yaml:"route"`
	InhibitRules []route.InhibitConfig   `yaml:"inhibit_rules"`
	Silences     []*route.Silence        `yaml:"silences"`
	Receivers    []notify.ReceiverConfig `yaml:"receivers"`
}

// State is where local state lives.
type State struct {
	Path           string `yaml:"path"`
	DeadLetterPath string `yaml:"dead_letter_path"`
}

// Inventory is the customer inventory file (customer contacts).
type Inventory struct {
	Path string `yaml:"path"`
}

// API authentication.
type API struct {
	// TokensFile is a YAML list of {name, role, token}, mode 0600.
	TokensFile string `yaml:"tokens_file"`
	// TokensEnv names an environment variable holding
	// "name:role:token,name:role:token".
	TokensEnv string `yaml:"tokens_env"`
}

// Console is the operator console, served at / beside the API; its charts
// and history read ClickHouse as the analyst user.
type Console struct {
	Enabled        bool `yaml:"enabled"`
	history.Config `yaml:",inline"`
}

// Default is a local setup.
func Default() Config {
	return Config{
		LogLevel: "info", Listen: ":9464",
		Kafka: kafkaclient.Default(), Consumer: consume.DefaultConfig(), ClickHouse: chclient.Default(),
		Audit:     audit.DefaultConfig(),
		State:     State{Path: "/var/lib/flowsentry/alerter/state.json", DeadLetterPath: "/var/lib/flowsentry/alerter/deadletter.jsonl"},
		Incidents: dispatch.DefaultConfig(),
		API:       API{TokensEnv: "FLOWSENTRY_ALERTER_TOKENS"},
		Console:   Console{Enabled: true, Config: history.Default()},
		Retry:     notify.DefaultRetry(),
	}
}

// Load reads path over the defaults and validates.
func Load(path string) (Config, error) {
	c := Default()
	if err := schemacfg.Load(path, &c); err != nil {
		return c, err
	}
	if c.Instance == "" {
		c.Instance, _ = os.Hostname()
	}
	return c, c.Validate()
}

// Validate checks every section; all problems are reported at once.
func (c Config) Validate() error {
	var errs []error
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: required"))
	}
	errs = append(errs, c.Kafka.Validate("kafka"), c.Consumer.Validate("consumer"), c.Incidents.Validate("incidents"),
		c.Retry.Validate("retry"))
	if c.Audit.Enabled {
		errs = append(errs, c.ClickHouse.Validate("clickhouse"), c.Audit.Validate("audit"))
	}
	if c.State.Path == "" {
		errs = append(errs, errors.New("state.path: required (the alerter's memory across restarts)"))
	}
	if c.API.TokensFile == "" && c.API.TokensEnv == "" {
		errs = append(errs, errors.New("api: set tokens_file and/or tokens_env"))
	}
	if c.Console.Enabled {
		errs = append(errs, c.Console.Validate("console"))
	}
	var names []string
	for i, r := range c.Receivers {
		key := fmt.Sprintf("receivers[%d]", i)
		errs = append(errs, r.Validate(key))
		if slices.Contains(names, r.Name) {
			errs = append(errs, fmt.Errorf("%s.name: duplicate receiver %q", key, r.Name))
		}
		names = append(names, r.Name)
		if r.Customer != nil && c.Inventory.Path == "" {
			errs = append(errs, fmt.Errorf("%s.customer: needs inventory.path", key))
		}
	}
	if len(c.Receivers) == 0 {
		errs = append(errs, errors.New("receivers: at least one receiver is required"))
	}
	if _, err := route.Compile(c.Route, names); err != nil {
		errs = append(errs, err)
	}
	if _, err := route.CompileInhibitRules(c.InhibitRules); err != nil {
		errs = append(errs, err)
	}
	for i, s := range c.Silences {
		cp := *s
		errs = append(errs, cp.Validate(fmt.Sprintf("silences[%d]", i)))
	}
	return errors.Join(errs...)
}
