package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/alerter/route"
)

func TestSaveLoad(t *testing.T) {
	f := File{Path: filepath.Join(t.TempDir(), "sub", "state.json")}
	s, err := f.Load()
	if err != nil || len(s.Incidents) != 0 {
		t.Fatalf("missing file: %v %+v", err, s)
	}
	now := time.Now().UTC().Truncate(time.Second)
	in := &incident.Incident{ID: "a", State: incident.Open, Severity: "critical", StartedAt: now,
		Ack: &incident.Ack{By: "bob", At: now}}
	s.Incidents = []*incident.Incident{in}
	s.Log = []*Entry{{Receiver: "slack", Incident: "a", ToldSeverity: "critical", LastSentAt: now}}
	s.Silences = []*route.Silence{{ID: "s", Matchers: []string{"customer=x"}, StartsAt: now, EndsAt: now.Add(time.Hour), CreatedBy: "a", Comment: "c"}}
	if err := f.Save(s); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(f.Path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	got, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Incidents[0].Ack.By != "bob" || !got.Incidents[0].StartedAt.Equal(now) || got.Log[0].ToldSeverity != "critical" ||
		got.Silences[0].ID != "s" {
		t.Fatalf("round trip: %+v", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(f.Path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	_ = os.WriteFile(f.Path, []byte("{garbage"), 0o600)
	if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), "move the file away") {
		t.Fatalf("corrupt file: %v", err)
	}
}
