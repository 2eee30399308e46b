package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/schemas/telemetry"
)

// Small HTTP clients for what the demo reads from the running pipeline:
// Prometheus metrics, readiness, the alerter API, ClickHouse over HTTP.

var httpClient = &http.Client{Timeout: 10 * time.Second}

// metrics is one scrape of a service's /metrics page.
type metrics = telemetry.Metrics

func scrape(ctx context.Context, base string) (metrics, error) { return telemetry.Scrape(ctx, base) }

// ready reports whether base/readyz answers 200.
func ready(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// clickhouse runs read-only queries over ClickHouse's HTTP interface.
type clickhouse struct {
	base, user, password string
}

// query returns the header and rows of a TabSeparatedWithNames result.
func (c clickhouse) query(ctx context.Context, sql string) (header []string, rows [][]string, err error) {
	q := url.Values{"query": {sql + "\nFORMAT TabSeparatedWithNames"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/?"+q.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("X-ClickHouse-User", c.user)
	req.Header.Set("X-ClickHouse-Key", c.password)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("clickhouse: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return nil, nil, nil
	}
	header = strings.Split(lines[0], "\t")
	for _, l := range lines[1:] {
		rows = append(rows, strings.Split(l, "\t"))
	}
	return header, rows, nil
}

// table renders rows under a header with aligned columns.
func table(header []string, rows [][]string) string {
	w := make([]int, len(header))
	for i, h := range header {
		w[i] = len(h)
	}
	for _, r := range rows {
		for i := range min(len(r), len(w)) {
			w[i] = max(w[i], len(r[i]))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i := range w {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			fmt.Fprintf(&b, "%-*s  ", w[i], c)
		}
		b.WriteString("\n")
	}
	line(header)
	sep := make([]string, len(w))
	for i := range w {
		sep[i] = strings.Repeat("─", w[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return strings.TrimRight(b.String(), "\n")
}

// alerterIncident is what GET /api/v1/incidents/{id} returns that the
// demo reads.
type alerterIncident struct {
	Incident struct {
		ID         string    `json:"id"`
		State      string    `json:"state"`
		Severity   string    `json:"severity"`
		ResolvedBy string    `json:"resolved_by"`
		StartedAt  time.Time `json:"started_at"`
	} `json:"incident"`
	Notifications []struct {
		Receiver     string    `json:"receiver"`
		ToldSeverity string    `json:"told_severity"`
		ToldResolved bool      `json:"told_resolved"`
		LastSentAt   time.Time `json:"last_sent_at"`
		Outcome      string    `json:"outcome"`
		Reason       string    `json:"reason"`
	} `json:"notifications"`
}

func getIncident(ctx context.Context, base, token, id string) (*alerterIncident, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/incidents/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("alerter API: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var out alerterIncident
	return &out, json.NewDecoder(resp.Body).Decode(&out)
}

// feed reads the local receivers' feed.
func readFeed(ctx context.Context, base string, after int) ([]item, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/feed?after=%d", base, after), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Items    []item `json:"items"`
		Rejected int    `json:"rejected"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, 0, err
	}
	return out.Items, out.Rejected, nil
}
