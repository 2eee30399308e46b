package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Retry is a receiver's retry policy.
type Retry struct {
	MaxAttempts    int           `yaml:"max_attempts"`    // 0: until MaxElapsed
	InitialBackoff time.Duration `yaml:"initial_backoff"` // first wait
	MaxBackoff     time.Duration `yaml:"max_backoff"`     // cap of one wait
	// MaxElapsed bounds the whole delivery; then it is dead-lettered. A
	// receiver down for a few minutes must not lose the page.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
	// MaxRetryAfter caps how long a server's Retry-After is honoured.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// DefaultRetry suits chat and paging services.
func DefaultRetry() Retry {
	return Retry{MaxAttempts: 0, InitialBackoff: time.Second, MaxBackoff: time.Minute,
		MaxElapsed: 15 * time.Minute, MaxRetryAfter: 5 * time.Minute}
}

// Validate names the bad key under prefix.
func (r Retry) Validate(prefix string) error {
	var errs []error
	if r.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("%s.max_attempts: must not be negative", prefix))
	}
	if r.InitialBackoff <= 0 {
		errs = append(errs, fmt.Errorf("%s.initial_backoff: must be positive", prefix))
	}
	if r.MaxBackoff < r.InitialBackoff {
		errs = append(errs, fmt.Errorf("%s.max_backoff: must be at least initial_backoff", prefix))
	}
	if r.MaxElapsed <= 0 && r.MaxAttempts == 0 {
		errs = append(errs, fmt.Errorf("%s.max_elapsed: must be positive when max_attempts is 0", prefix))
	}
	return errors.Join(errs...)
}

// Backoff is the wait before attempt n+1 (n >= 1): exponential, with "equal
// jitter" (half fixed, half random) so that receivers recovering from an
// outage are not hit by every alerter at the same instant.
func (r Retry) Backoff(n int) time.Duration {
	d := r.InitialBackoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// Attempt describes one try, for metrics and the audit trail.
type Attempt struct {
	N        int
	Start    time.Time
	Duration time.Duration
	Err      error
	Wait     time.Duration // before the next attempt; 0 when none follows
	Final    bool
}

// ErrGaveUp marks a delivery abandoned after retries: dead-letter it.
var ErrGaveUp = errors.New("gave up")

// Deliver calls send until it succeeds, fails permanently or the policy is
// exhausted, waiting for the limiter before each attempt. observe sees every
// attempt. The returned error wraps ErrGaveUp when retries ran out.
func Deliver(ctx context.Context, r Retry, lim *Limiter, send func(context.Context) error, observe func(Attempt)) error {
	start := time.Now()
	for n := 1; ; n++ {
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		a := Attempt{N: n, Start: time.Now()}
		err := send(ctx)
		a.Duration, a.Err = time.Since(a.Start), err
		if err == nil {
			a.Final = true
			observe(a)
			return nil
		}
		if ctx.Err() != nil {
			a.Final = true
			observe(a)
			return ctx.Err()
		}
		if !IsRetryable(err) {
			a.Final = true
			observe(a)
			return fmt.Errorf("%w after %d attempt(s): permanent error: %w", ErrGaveUp, n, err)
		}
		wait := r.Backoff(n)
		var e *Error
		asked := errors.As(err, &e) && e.RetryAfter > 0
		if asked && e.RetryAfter > wait {
			wait = e.RetryAfter
			if r.MaxRetryAfter > 0 {
				wait = min(wait, r.MaxRetryAfter)
			}
		}
		if (r.MaxAttempts > 0 && n >= r.MaxAttempts) ||
			(r.MaxElapsed > 0 && time.Since(start)+wait > r.MaxElapsed) {
			a.Final = true
			observe(a)
			return fmt.Errorf("%w after %d attempt(s) in %s: %w", ErrGaveUp, n, time.Since(start).Round(time.Millisecond), err)
		}
		a.Wait = wait
		observe(a)
		if asked {
			// A Retry-After holds back every sender to this
			// destination, not only this delivery.
			lim.Delay(wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Limiter is a token bucket: Rate tokens per second up to Burst. A nil
// *Limiter never waits.
type Limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	until  time.Time // no token before this (Retry-After)
}

// NewLimiter returns a bucket; perMinute <= 0 means unlimited (nil).
func NewLimiter(perMinute float64, burst int) *Limiter {
	if perMinute <= 0 {
		return nil
	}
	b := float64(max(burst, 1))
	return &Limiter{rate: perMinute / 60, burst: b, tokens: b, last: time.Now()}
}

// Wait blocks until a token is available or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	for {
		l.mu.Lock()
		now := time.Now()
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
		var wait time.Duration
		switch {
		case now.Before(l.until):
			wait = l.until.Sub(now)
		case l.tokens >= 1:
			l.tokens--
			l.mu.Unlock()
			return nil
		default:
			wait = time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		}
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Delay holds every sender back for d.
func (l *Limiter) Delay(d time.Duration) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := time.Now().Add(d); u.After(l.until) {
		l.until = u
	}
}

// Limiters hands out one limiter per destination key (Slack channel webhook,
// PagerDuty routing key, customer webhook), shared by every receiver that
// sends there.
type Limiters struct {
	mu sync.Mutex
	m  map[string]*Limiter
}

// Get returns the limiter for key, creating it with the given rate.
func (ls *Limiters) Get(key string, perMinute float64, burst int) *Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]*Limiter{}
	}
	l, ok := ls.m[key]
	if !ok {
		l = NewLimiter(perMinute, burst)
		ls.m[key] = l
	}
	return l
}
