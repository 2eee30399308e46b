package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/notify/notifytest"
)

// item is one message a local receiver accepted, rendered for a terminal.
type item struct {
	Seq       int       `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"` // slack, pagerduty, email
	Incidents []string  `json:"incidents"`
	Action    string    `json:"action,omitempty"` // pagerduty: trigger/resolve/acknowledge
	Resolved  bool      `json:"resolved"`         // the message tells an end
	Title     string    `json:"title"`
	Text      string    `json:"text"`
}

// inbox keeps accepted messages in order, for the feed and the log.
type inbox struct {
	mu       sync.Mutex
	items    []item
	rejected int
	out      io.Writer
	changed  chan struct{}
}

func newInbox(out io.Writer) *inbox { return &inbox{out: out, changed: make(chan struct{})} }

func (b *inbox) add(it item) {
	b.mu.Lock()
	it.Seq = len(b.items) + 1
	it.Time = time.Now()
	b.items = append(b.items, it)
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
	fmt.Fprintf(b.out, "%s %s #%d %s\n%s\n\n", it.Time.Format(time.TimeOnly), strings.ToUpper(it.Kind), it.Seq, it.Title, indent(it.Text))
}

func (b *inbox) reject(kind string, problems []string) {
	b.mu.Lock()
	b.rejected++
	b.mu.Unlock()
	fmt.Fprintf(b.out, "%s %s REJECTED (the real service would refuse it): %s\n", time.Now().Format(time.TimeOnly),
		strings.ToUpper(kind), strings.Join(problems, "; "))
}

// after returns items with Seq > seq, waiting up to wait for one.
func (b *inbox) after(seq int, wait time.Duration) ([]item, int) {
	deadline := time.After(wait)
	for {
		b.mu.Lock()
		ch, rej := b.changed, b.rejected
		var out []item
		if seq < len(b.items) {
			out = append(out, b.items[max(seq, 0):]...)
		}
		b.mu.Unlock()
		if len(out) > 0 {
			return out, rej
		}
		select {
		case <-ch:
		case <-deadline:
			return nil, rej
		}
	}
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// receiverHandler serves the fake Slack webhook (POST /slack/...), the
// PagerDuty Events API v2 (POST /v2/enqueue) and the feed the demo reads
// (GET /feed?after=N). Payloads are checked with the alerter's contract
// validators (notifytest): what the real service would refuse is refused.
func receiverHandler(b *inbox) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if probs := notifytest.ValidateSlack(body); len(probs) > 0 {
			b.reject("slack", probs)
			http.Error(w, "invalid_blocks", http.StatusBadRequest)
			return
		}
		var m notify.SlackMessage
		_ = json.Unmarshal(body, &m)
		title, text, ids := renderSlack(m)
		b.add(item{Kind: "slack", Incidents: ids, Resolved: strings.HasPrefix(m.Text, "RESOLVED"), Title: title, Text: text})
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("POST /v2/enqueue", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ev, probs := notifytest.ValidatePagerDuty(body)
		w.Header().Set("Content-Type", "application/json")
		if len(probs) > 0 {
			b.reject("pagerduty", probs)
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "errors": probs})
			return
		}
		title, text := renderPagerDuty(ev)
		b.add(item{Kind: "pagerduty", Incidents: []string{ev.DedupKey}, Action: ev.EventAction,
			Resolved: ev.EventAction == "resolve", Title: title, Text: text})
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
	})
	mux.HandleFunc("GET /feed", func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		items, rejected := b.after(after, 2*time.Second)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "rejected": rejected})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return mux
}

// smtpBackend accepts every mail into the inbox (a relay for the demo; no
// STARTTLS, no auth: loopback only).
type smtpBackend struct{ b *inbox }

func (be smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: be.b}, nil }

type smtpSession struct {
	b    *inbox
	from string
	to   []string
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return err
	}
	title, text, id, err := renderMail(string(raw))
	if err != nil {
		s.b.reject("email", []string{err.Error()})
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "malformed message"}
	}
	s.b.add(item{Kind: "email", Incidents: []string{id}, Resolved: strings.Contains(title, "Resolved"),
		Title: title + " → " + strings.Join(s.to, ", "), Text: text})
	return nil
}
func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

// runReceivers is "demo receivers": the local stand-ins for Slack,
// PagerDuty and the customers' mail relay, until SIGINT/SIGTERM.
func runReceivers(args []string) error {
	fs := flag.NewFlagSet("receivers", flag.ExitOnError)
	httpAddr := fs.String("http", "127.0.0.1:19106", "Slack webhook, PagerDuty Events API and feed")
	smtpAddr := fs.String("smtp", "127.0.0.1:19125", "SMTP relay for customer mail")
	_ = fs.Parse(args)
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", "demo-receivers")
	b := newInbox(os.Stdout)

	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("-http: %w", err)
	}
	sl, err := net.Listen("tcp", *smtpAddr)
	if err != nil {
		return fmt.Errorf("-smtp: %w", err)
	}
	hs := &http.Server{Handler: receiverHandler(b), ReadHeaderTimeout: 5 * time.Second}
	ss := smtp.NewServer(smtpBackend{b: b})
	ss.Domain = "localhost"
	ss.ReadTimeout, ss.WriteTimeout = 10*time.Second, 10*time.Second
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(hl) }()
	go func() { errc <- ss.Serve(sl) }()
	log.Info("receivers listening", "http", hl.Addr().String(), "smtp", sl.Addr().String())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	_ = ss.Close()
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}
