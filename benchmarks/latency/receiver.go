package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/notify/notifytest"
)

// receiver stands in for Slack (incoming webhook), PagerDuty (Events API
// v2) and a signed webhook. Each request is timestamped when its handler
// starts, before the body is read: that instant is "notification
// received". Payloads are checked with the alerter's contract validators;
// what the real service would refuse is refused and counted.
type receiver struct {
	secret []byte
	srv    *http.Server
	url    string

	mu       sync.Mutex
	mentions []mention
	requests map[string]int
	refused  []string
}

func startReceiver(secret []byte) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r := &receiver{secret: secret, url: "http://" + ln.Addr().String(), requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/", r.handle("slack", func(b []byte, _ http.Header, _ time.Time) ([]mention, error) {
		return parseSlack(b)
	}))
	mux.HandleFunc("POST /v2/enqueue", r.handle("pagerduty", func(b []byte, _ http.Header, _ time.Time) ([]mention, error) {
		return parsePagerDuty(b)
	}))
	mux.HandleFunc("POST /webhook", r.handle("webhook", func(b []byte, h http.Header, at time.Time) ([]mention, error) {
		if err := notify.Verify(r.secret, h, b, at, 5*time.Minute); err != nil {
			return nil, err
		}
		return parseWebhook(b)
	}))
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) handle(kind string, parse func([]byte, http.Header, time.Time) ([]mention, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		var ms []mention
		if err == nil {
			ms, err = parse(body, req.Header, at)
		}
		r.mu.Lock()
		r.requests[kind]++
		if err != nil {
			r.refused = append(r.refused, kind+": "+err.Error())
		}
		for _, m := range ms {
			m.Receiver, m.At = kind, at
			r.mentions = append(r.mentions, m)
		}
		r.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if kind == "pagerduty" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"success","message":"Event processed"}`))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
}

func (r *receiver) snapshot() (ms []mention, requests map[string]int, refused []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	req := map[string]int{}
	for k, v := range r.requests {
		req[k] = v
	}
	return append([]mention(nil), r.mentions...), req, append([]string(nil), r.refused...)
}

func (r *receiver) close() { _ = r.srv.Close() }

var slackIncidentRe = regexp.MustCompile("Incident `([^`]+)`")

// parseSlack reads a Block Kit message: every incident is a header (with
// "RESOLVED" for an end), optional sections with Customer/Subnet fields,
// and a context block naming the incident id, which closes it.
func parseSlack(body []byte) ([]mention, error) {
	if probs := notifytest.ValidateSlack(body); len(probs) > 0 {
		return nil, errors.New(strings.Join(probs, "; "))
	}
	var m notify.SlackMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	var out []mention
	var cur mention
	for _, b := range m.Blocks {
		switch b.Type {
		case "header":
			cur = mention{}
			if b.Text != nil {
				cur.Resolved = strings.Contains(b.Text.Text, "RESOLVED ")
			}
		case "section":
			for _, f := range b.Fields {
				if v, ok := strings.CutPrefix(f.Text, "*Customer*\n"); ok {
					cur.Customer = v
				}
				if v, ok := strings.CutPrefix(f.Text, "*Subnet*\n"); ok {
					cur.Subnet, _, _ = strings.Cut(v, " ")
				}
			}
		case "context":
			for _, e := range b.Elements {
				if mm := slackIncidentRe.FindStringSubmatch(e.Text); mm != nil {
					cur.ID = mm[1]
					out = append(out, cur)
					cur = mention{Resolved: cur.Resolved}
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("slack message names no incident")
	}
	return out, nil
}

// parsePagerDuty reads one Events API v2 event: the dedup key is the
// incident id; a trigger also carries customer and subnet.
func parsePagerDuty(body []byte) ([]mention, error) {
	ev, probs := notifytest.ValidatePagerDuty(body)
	if len(probs) > 0 {
		return nil, errors.New(strings.Join(probs, "; "))
	}
	m := mention{ID: ev.DedupKey}
	switch ev.EventAction {
	case "trigger":
		if ev.Payload != nil {
			m.Customer, _ = ev.Payload.CustomDetails["customer"].(string)
			m.Subnet, _ = ev.Payload.CustomDetails["subnet"].(string)
		}
	case "resolve":
		m.Resolved = true
	default: // acknowledge: no news about the incident's phase
		return nil, nil
	}
	return []mention{m}, nil
}

// parseWebhook reads the alerter's signed webhook body.
func parseWebhook(body []byte) ([]mention, error) {
	var b notify.WebhookBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("webhook body: %w", err)
	}
	var out []mention
	for _, in := range b.Firing {
		out = append(out, mention{ID: in.ID, Customer: in.Customer, Subnet: in.Subnet})
	}
	for _, in := range b.Resolved {
		out = append(out, mention{ID: in.ID, Customer: in.Customer, Subnet: in.Subnet, Resolved: true})
	}
	if len(out) == 0 {
		return nil, errors.New("webhook body names no incident")
	}
	return out, nil
}
