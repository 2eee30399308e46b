// Package notify delivers incidents to people and systems: Slack incoming
// webhooks (Block Kit), PagerDuty Events API v2, signed generic webhooks and
// the affected customer (e-mail over SMTP and/or the customer's webhook).
// Each receiver is a Notifier; retries with jittered exponential back-off,
// Retry-After and per-destination rate limits are shared (see Deliver).
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
)

// Message is what one receiver is told at one flush of one group.
type Message struct {
	Receiver string `json:"receiver"`
	GroupKey string `json:"group_key"`
	// Firing holds open incidents that are new, escalated or due for a
	// repeat; Resolved holds incidents that ended since the last message.
	Firing   []*incident.Incident `json:"firing,omitempty"`
	Resolved []*incident.Incident `json:"resolved,omitempty"`
	Repeat   bool                 `json:"repeat,omitempty"`
}

// Status is "firing" when anything fires, else "resolved".
func (m *Message) Status() string {
	if len(m.Firing) > 0 {
		return "firing"
	}
	return "resolved"
}

// Notifier is one receiver.
type Notifier interface {
	// Notify delivers m once (no retry: Deliver retries). A returned
	// *Error says whether trying again can help.
	Notify(ctx context.Context, m *Message) error
	// Kind is the receiver type for metrics and the audit trail.
	Kind() string
}

// PerIncident is implemented by notifiers whose destination handles one
// incident per call (PagerDuty events, customer messages): the dispatcher
// splits a group's message so that each incident's outcome is recorded on
// its own and a retry never re-sends an incident already delivered.
type PerIncident interface{ PerIncident() bool }

// Filter is implemented by notifiers that only want some incidents (a
// customer's policy); the reason is recorded for the skipped ones.
type Filter interface {
	Wants(in *incident.Incident) (ok bool, reason string)
}

// Error is a delivery failure.
type Error struct {
	Status     int           // HTTP status or SMTP code, 0 when none
	Retryable  bool          // a later attempt may succeed
	RetryAfter time.Duration // the server asked to wait this long
	Err        error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("status %d: %v", e.Status, e.Err)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent wraps an error no retry can fix (bad payload, bad key).
func Permanent(err error) error { return &Error{Err: err} }

// IsRetryable reports whether err is worth another attempt. Errors that are
// not *Error (network failures) are.
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return !errors.Is(err, context.Canceled)
}

// HTTPError classifies a non-2xx response: 429 and 5xx (and 408) are
// retryable, honouring Retry-After; other 4xx are permanent.
func HTTPError(resp *http.Response, body []byte) error {
	e := &Error{Status: resp.StatusCode, Err: fmt.Errorf("%s: %s", resp.Status, truncate(string(body), 300))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode >= 500:
		e.Retryable = true
		e.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// ParseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 10.2.3).
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence,
// marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := n - len(ell)
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + ell
}
