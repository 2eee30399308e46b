package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
)

// Signature headers of webhook deliveries. The signature is
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)); binding the
// timestamp lets a receiver refuse replays older than a few minutes.
const (
	HeaderTimestamp = "X-Flowsentry-Timestamp"
	HeaderSignature = "X-Flowsentry-Signature"
	HeaderDelivery  = "X-Flowsentry-Delivery"
)

// WebhookBody is the JSON a webhook receives.
type WebhookBody struct {
	Version  string               `json:"version"` // "1"
	Receiver string               `json:"receiver"`
	GroupKey string               `json:"group_key"`
	Status   string               `json:"status"` // firing or resolved
	Repeat   bool                 `json:"repeat,omitempty"`
	SentAt   time.Time            `json:"sent_at"`
	Firing   []*incident.Incident `json:"firing"`
	Resolved []*incident.Incident `json:"resolved"`
	Links    map[string]string    `json:"links,omitempty"` // incident id -> console URL
}

// Webhook posts signed JSON.
type Webhook struct {
	URL    string
	Secret []byte
	Links  Links
	Client *http.Client
	// Now is the clock (tests).
	Now func() time.Time
}

func (w *Webhook) Kind() string { return "webhook" }

// Notify posts the group's incidents.
func (w *Webhook) Notify(ctx context.Context, m *Message) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	b := WebhookBody{Version: "1", Receiver: m.Receiver, GroupKey: m.GroupKey, Status: m.Status(), Repeat: m.Repeat,
		SentAt: now().UTC(), Firing: nonNil(m.Firing), Resolved: nonNil(m.Resolved), Links: map[string]string{}}
	for _, in := range append(append([]*incident.Incident{}, m.Firing...), m.Resolved...) {
		if u := w.Links.Incident(in.ID); u != "" {
			b.Links[in.ID] = u
		}
	}
	body, err := json.Marshal(b)
	if err != nil {
		return Permanent(err)
	}
	return PostSigned(ctx, client(w.Client), w.URL, w.Secret, body, deliveryID(m), now())
}

// PostSigned posts body with the signature headers.
func PostSigned(ctx context.Context, c *http.Client, url string, secret, body []byte, delivery string, now time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook request: %w", redactURL(err)))
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flowsentry-alerter")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	if delivery != "" {
		req.Header.Set(HeaderDelivery, delivery)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", redactURL(err))
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return HTTPError(resp, rb)
	}
	return nil
}

// Sign is the signature header value for timestamp ts and body.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify is what a receiver runs: the signature must match and the
// timestamp be within tolerance of now.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("missing or bad %s", HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp %s is %s away from now", ts, d)
	}
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(Sign(secret, ts, body))) {
		return errors.New("signature mismatch")
	}
	return nil
}

// deliveryID identifies the content of a delivery (same incidents, same
// states): receivers can drop a re-delivery after an alerter crash.
func deliveryID(m *Message) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%v|", m.Receiver, m.GroupKey, m.Repeat)
	for _, in := range m.Firing {
		fmt.Fprintf(h, "f:%s:%s;", in.ID, in.MaxSeverity)
	}
	for _, in := range m.Resolved {
		fmt.Fprintf(h, "r:%s;", in.ID)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func nonNil(s []*incident.Incident) []*incident.Incident {
	if s == nil {
		return []*incident.Incident{}
	}
	return s
}

// redactURL strips the URL from net/http errors: webhook URLs carry tokens.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s [url redacted]: %w", strings.ToUpper(ue.Op), ue.Err)
	}
	return err
}
