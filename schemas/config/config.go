// Package config loads a service's YAML file strictly: unknown keys are
// errors (a typo must not silently fall back to a default), and the service's
// defaults are kept for keys the file leaves out.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// Load decodes the file at path into dst, which holds the defaults already.
// An empty path keeps the defaults.
func Load(path string, dst any) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return Decode(b, dst)
}

// Decode is Load for bytes already read.
func Decode(b []byte, dst any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
