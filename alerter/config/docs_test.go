package config

import (
	"os"
	"strings"
	"testing"
)

// docs/alerting.md shows the whole example configuration; it drifted once
// when a section was added, so the copy is checked.
func TestAlertingDocShowsTheExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/alerting.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../alerter.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	block := "```yaml\n" + strings.TrimRight(string(example), "\n") + "\n```"
	if !strings.Contains(string(doc), block) {
		t.Error("docs/alerting.md does not contain alerter/alerter.example.yaml verbatim in a ```yaml block: copy it again")
	}
}
