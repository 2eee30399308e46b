// Package notifytest stands in for Slack, PagerDuty, webhook receivers and
// an SMTP relay in tests. The fakes validate every payload field by field
// against the public contracts (Slack Block Kit, PagerDuty Events API v2,
// the signed webhook) and refuse what the real service would refuse.
package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/packetworks/flowsentry/alerter/notify"
)

// Failures makes a fake answer the next requests with errors.
type Failures struct {
	mu         sync.Mutex
	statuses   []int
	RetryAfter string // sent with 429 answers
}

// Fail queues status answers for the next requests.
func (f *Failures) Fail(statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, statuses...)
}

func (f *Failures) next(w http.ResponseWriter) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.statuses) == 0 {
		return false
	}
	s := f.statuses[0]
	f.statuses = f.statuses[1:]
	if s == http.StatusTooManyRequests && f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	http.Error(w, "injected failure", s)
	return true
}

// Slack is a fake incoming webhook.
type Slack struct {
	*httptest.Server
	Failures
	mu       sync.Mutex
	messages []notify.SlackMessage
	times    []time.Time
	problems []string
	requests int
}

// NewSlack starts the fake; it stops at the end of the test.
func NewSlack(t testing.TB) *Slack {
	s := &Slack{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *Slack) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if s.next(w) {
		return
	}
	body, _ := io.ReadAll(r.Body)
	probs := ValidateSlack(body)
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		probs = append(probs, "not a JSON POST")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(probs) > 0 {
		s.problems = append(s.problems, probs...)
		http.Error(w, "invalid_blocks", http.StatusBadRequest)
		return
	}
	var m notify.SlackMessage
	_ = json.Unmarshal(body, &m)
	s.messages = append(s.messages, m)
	s.times = append(s.times, time.Now())
	_, _ = w.Write([]byte("ok"))
}

// Messages returns the accepted messages.
func (s *Slack) Messages() []notify.SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notify.SlackMessage(nil), s.messages...)
}

// Times returns when each accepted message arrived.
func (s *Slack) Times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

// Problems returns contract violations seen.
func (s *Slack) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// Requests counts every request, failed ones included.
func (s *Slack) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ValidateSlack checks an incoming-webhook payload against Block Kit's
// rules: known block types, well-formed text objects, length limits.
func ValidateSlack(body []byte) []string {
	var p []string
	var msg map[string]any
	if err := json.Unmarshal(body, &msg); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	for k := range msg {
		if k != "text" && k != "blocks" {
			p = append(p, "unexpected top-level key "+k)
		}
	}
	if t, _ := msg["text"].(string); t == "" {
		p = append(p, "text (notification fallback) is empty")
	}
	blocks, ok := msg["blocks"].([]any)
	if !ok || len(blocks) == 0 {
		return append(p, "blocks missing")
	}
	if len(blocks) > 50 {
		p = append(p, fmt.Sprintf("%d blocks > 50", len(blocks)))
	}
	for i, b := range blocks {
		blk, _ := b.(map[string]any)
		where := fmt.Sprintf("blocks[%d]", i)
		typ, _ := blk["type"].(string)
		allowed := map[string]bool{"type": true}
		switch typ {
		case "header":
			allowed["text"] = true
			p = append(p, textObject(where+".text", blk["text"], 150, true)...)
		case "section":
			allowed["text"], allowed["fields"] = true, true
			if blk["text"] == nil && blk["fields"] == nil {
				p = append(p, where+": section needs text or fields")
			}
			if blk["text"] != nil {
				p = append(p, textObject(where+".text", blk["text"], 3000, false)...)
			}
			if f, ok := blk["fields"]; ok {
				fs, _ := f.([]any)
				if len(fs) == 0 || len(fs) > 10 {
					p = append(p, fmt.Sprintf("%s.fields: %d items, want 1..10", where, len(fs)))
				}
				for j, x := range fs {
					p = append(p, textObject(fmt.Sprintf("%s.fields[%d]", where, j), x, 2000, false)...)
				}
			}
		case "context":
			allowed["elements"] = true
			els, _ := blk["elements"].([]any)
			if len(els) == 0 || len(els) > 10 {
				p = append(p, fmt.Sprintf("%s.elements: %d items, want 1..10", where, len(els)))
			}
			for j, x := range els {
				p = append(p, textObject(fmt.Sprintf("%s.elements[%d]", where, j), x, 3000, false)...)
			}
		case "divider":
		default:
			p = append(p, fmt.Sprintf("%s: unknown block type %q", where, typ))
		}
		for k := range blk {
			if !allowed[k] {
				p = append(p, fmt.Sprintf("%s: unexpected key %s in %s block", where, k, typ))
			}
		}
	}
	return p
}

func textObject(where string, v any, max int, plainOnly bool) []string {
	o, ok := v.(map[string]any)
	if !ok {
		return []string{where + ": not a text object"}
	}
	var p []string
	typ, _ := o["type"].(string)
	if typ != "plain_text" && typ != "mrkdwn" {
		p = append(p, fmt.Sprintf("%s.type: %q is not plain_text or mrkdwn", where, typ))
	}
	if plainOnly && typ != "plain_text" {
		p = append(p, where+": header text must be plain_text")
	}
	t, _ := o["text"].(string)
	if t == "" {
		p = append(p, where+".text: empty")
	}
	if n := len([]rune(t)); n > max {
		p = append(p, fmt.Sprintf("%s.text: %d characters > %d", where, n, max))
	}
	for k := range o {
		if k != "type" && k != "text" && k != "emoji" && k != "verbatim" {
			p = append(p, where+": unexpected key "+k)
		}
	}
	return p
}

// PagerDuty is a fake Events API v2 endpoint with PagerDuty's dedup rule:
// a trigger whose dedup_key names an open incident updates it; one that
// names no open incident opens a new one.
type PagerDuty struct {
	*httptest.Server
	Failures
	mu       sync.Mutex
	events   []notify.PagerDutyEvent
	open     map[string]bool
	opened   int
	resolved int
	problems []string
	requests int
	// Hold, when set, is called with each accepted event before the answer
	// is written (tests kill the alerter there).
	Hold func(notify.PagerDutyEvent)
}

// NewPagerDuty starts the fake.
func NewPagerDuty(t testing.TB) *PagerDuty {
	p := &PagerDuty{open: map[string]bool{}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *PagerDuty) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()
	if p.next(w) {
		return
	}
	body, _ := io.ReadAll(r.Body)
	ev, probs := ValidatePagerDuty(body)
	if r.URL.Path != "/v2/enqueue" {
		probs = append(probs, "path "+r.URL.Path+" is not /v2/enqueue")
	}
	w.Header().Set("Content-Type", "application/json")
	if len(probs) > 0 {
		p.mu.Lock()
		p.problems = append(p.problems, probs...)
		p.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": probs})
		return
	}
	p.mu.Lock()
	p.events = append(p.events, ev)
	switch ev.EventAction {
	case "trigger":
		if !p.open[ev.DedupKey] {
			p.open[ev.DedupKey] = true
			p.opened++
		}
	case "resolve":
		if p.open[ev.DedupKey] {
			delete(p.open, ev.DedupKey)
			p.resolved++
		}
	}
	hold := p.Hold
	p.mu.Unlock()
	if hold != nil {
		hold(ev)
	}
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

// Events returns the accepted events.
func (p *PagerDuty) Events() []notify.PagerDutyEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]notify.PagerDutyEvent(nil), p.events...)
}

// Incidents returns how many PagerDuty incidents were opened and resolved,
// and how many are open now.
func (p *PagerDuty) Incidents() (opened, resolved, open int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opened, p.resolved, len(p.open)
}

// Problems returns contract violations seen.
func (p *PagerDuty) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// Requests counts every request.
func (p *PagerDuty) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// ValidatePagerDuty checks an Events API v2 event.
func ValidatePagerDuty(body []byte) (notify.PagerDutyEvent, []string) {
	var p []string
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return notify.PagerDutyEvent{}, []string{"not JSON: " + err.Error()}
	}
	var ev notify.PagerDutyEvent
	_ = json.Unmarshal(body, &ev)
	known := map[string]bool{"routing_key": true, "event_action": true, "dedup_key": true, "payload": true,
		"client": true, "client_url": true, "links": true, "images": true}
	for k := range raw {
		if !known[k] {
			p = append(p, "unknown field "+k)
		}
	}
	if ev.RoutingKey == "" {
		p = append(p, "routing_key: required")
	}
	switch ev.EventAction {
	case "trigger", "acknowledge", "resolve":
	default:
		p = append(p, fmt.Sprintf("event_action: %q is not trigger, acknowledge or resolve", ev.EventAction))
	}
	if len(ev.DedupKey) > 255 {
		p = append(p, fmt.Sprintf("dedup_key: %d characters > 255", len(ev.DedupKey)))
	}
	if ev.EventAction != "trigger" && ev.DedupKey == "" {
		p = append(p, "dedup_key: required for "+ev.EventAction)
	}
	if ev.EventAction == "trigger" {
		pl := ev.Payload
		if pl == nil {
			return ev, append(p, "payload: required for trigger")
		}
		if pl.Summary == "" || len([]rune(pl.Summary)) > 1024 {
			p = append(p, fmt.Sprintf("payload.summary: %d characters, want 1..1024", len([]rune(pl.Summary))))
		}
		if pl.Source == "" {
			p = append(p, "payload.source: required")
		}
		switch pl.Severity {
		case "critical", "error", "warning", "info":
		default:
			p = append(p, fmt.Sprintf("payload.severity: %q is not critical, error, warning or info", pl.Severity))
		}
		if pl.Timestamp != "" {
			if _, err := time.Parse(time.RFC3339, pl.Timestamp); err != nil {
				p = append(p, "payload.timestamp: not ISO 8601: "+pl.Timestamp)
			}
		}
	}
	if len(body) > 512*1024 {
		p = append(p, "event larger than 512 KB")
	}
	return ev, p
}

// Webhook is a fake receiver that verifies the signature.
type Webhook struct {
	*httptest.Server
	Failures
	Secret   []byte
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	problems []string
	requests int
}

// NewWebhook starts the fake.
func NewWebhook(t testing.TB, secret string) *Webhook {
	h := &Webhook{Secret: []byte(secret)}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *Webhook) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests++
	h.mu.Unlock()
	if h.next(w) {
		return
	}
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := notify.Verify(h.Secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		h.problems = append(h.problems, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if !json.Valid(body) {
		h.problems = append(h.problems, "body is not JSON")
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	h.bodies = append(h.bodies, body)
	h.headers = append(h.headers, r.Header.Clone())
	w.WriteHeader(http.StatusNoContent)
}

// Bodies returns the accepted bodies.
func (h *Webhook) Bodies() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...)
}

// Headers returns the accepted requests' headers.
func (h *Webhook) Headers() []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]http.Header(nil), h.headers...)
}

// Problems returns refused deliveries.
func (h *Webhook) Problems() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.problems...)
}

// Mail is a message the fake SMTP relay received.
type Mail struct {
	From string
	To   []string
	Data string
	TLS  bool // the session had been upgraded with STARTTLS
	Auth string
}

// SMTP is a fake relay offering STARTTLS with a self-signed certificate.
type SMTP struct {
	Addr  string
	CA    *x509.CertPool // trusts the relay's certificate
	mu    sync.Mutex
	mails []Mail
	srv   *smtp.Server
	// FailRcpt, when > 0, answers that many RCPTs with 451 (try again later).
	FailRcpt int
}

// NewSMTP starts the relay on loopback.
func NewSMTP(t testing.TB) *SMTP {
	cert, pool := selfSigned(t)
	s := &SMTP{CA: pool}
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Mails returns the received messages.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

type backend struct{ s *SMTP }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s    *SMTP
	conn *smtp.Conn
	m    Mail
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	_, se.m.TLS = se.conn.TLSConnectionState()
	se.m.From = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.s.mu.Lock()
	defer se.s.mu.Unlock()
	if se.s.FailRcpt > 0 {
		se.s.FailRcpt--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	se.m.To = append(se.m.To, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.m.Data = string(b)
	se.s.mu.Lock()
	se.s.mails = append(se.s.mails, se.m)
	se.s.mu.Unlock()
	return nil
}

func (se *session) Reset()        { se.m = Mail{} }
func (se *session) Logout() error { return nil }

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}
