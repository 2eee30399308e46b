// Package state keeps the alerter's durable local state in one JSON file:
// incidents, what each receiver has been told about each incident (the
// notification log) and the silences made through the API. After a crash
// the alerter rebuilds from it, so that a re-delivered Kafka event does not
// page twice and a notification not yet sent is not lost.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/alerter/route"
)

// Version of the file layout.
const Version = 1

// Snapshot is the file's content.
type Snapshot struct {
	Version   int                  `json:"version"`
	SavedAt   time.Time            `json:"saved_at"`
	Incidents []*incident.Incident `json:"incidents"`
	Log       []*Entry             `json:"log"`
	Silences  []*route.Silence     `json:"silences"`
}

// Entry is what one receiver has been told about one incident.
// Told* advance only on delivery (or a dead letter: tried and given up);
// Settled* also advance when a notification was deliberately not sent
// (silenced, inhibited, outside the customer's policy), which is what lets
// the Kafka offset be committed.
type Entry struct {
	Receiver        string    `json:"receiver"`
	Incident        string    `json:"incident"`
	ToldSeverity    string    `json:"told_severity,omitempty"`
	ToldResolved    bool      `json:"told_resolved,omitempty"`
	SettledSeverity string    `json:"settled_severity,omitempty"`
	SettledResolved bool      `json:"settled_resolved,omitempty"`
	LastSentAt      time.Time `json:"last_sent_at,omitzero"`
	Outcome         string    `json:"outcome,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	At              time.Time `json:"at,omitzero"`
}

// File is the state file.
type File struct{ Path string }

// Load reads the file; a missing file is an empty state (first start).
func (f File) Load() (*Snapshot, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Snapshot{Version: Version}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state %s: %w (move the file away to start empty)", f.Path, err)
	}
	if s.Version != Version {
		return nil, fmt.Errorf("state %s: version %d, this alerter reads %d", f.Path, s.Version, Version)
	}
	return &s, nil
}

// Save writes the snapshot atomically: a temporary file (0600: incidents
// name customers) is synced and renamed over the old one, and the directory
// synced, so a crash leaves either the old or the new state, never half.
func (f File) Save(s *Snapshot) error {
	s.Version = Version
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
