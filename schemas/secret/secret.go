// Package secret resolves secrets (passwords, tokens, webhook URLs) from the
// environment or from files, so that they never sit in a YAML file, and
// keeps them out of logs: a Value prints as "[redacted]".
package secret

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Ref is how a config file names a secret: an environment variable or a
// file (e.g. a Kubernetes secret mount). Never the secret itself.
type Ref struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// IsZero reports whether no source is set.
func (r Ref) IsZero() bool { return r.Env == "" && r.File == "" }

// Resolve reads the secret. key is the config key, used in errors.
func (r Ref) Resolve(key string) (Value, error) {
	switch {
	case r.Env != "" && r.File != "":
		return Value{}, fmt.Errorf("%s: set either env or file, not both", key)
	case r.Env != "":
		v, ok := os.LookupEnv(r.Env)
		if !ok || v == "" {
			return Value{}, fmt.Errorf("%s: environment variable %s is not set", key, r.Env)
		}
		return Value{v: v}, nil
	case r.File != "":
		b, err := os.ReadFile(r.File)
		if err != nil {
			// The path is not secret; the content is never echoed.
			return Value{}, fmt.Errorf("%s: reading secret file: %w", key, err)
		}
		return Value{v: strings.TrimRight(string(b), "\r\n")}, nil
	}
	return Value{}, nil
}

// Value holds a resolved secret. Its String, GoString and LogValue methods
// never reveal it; call Reveal only where the secret is handed to a client.
type Value struct{ v string }

// New wraps a secret obtained elsewhere (tests, generated passwords).
func New(s string) Value { return Value{v: s} }

func (v Value) Reveal() string               { return v.v }
func (v Value) IsZero() bool                 { return v.v == "" }
func (v Value) String() string               { return "[redacted]" }
func (v Value) GoString() string             { return "[redacted]" }
func (v Value) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (v Value) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }
