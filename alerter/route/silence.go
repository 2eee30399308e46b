package route

import (
	"errors"
	"fmt"
	"time"
)

// Silence mutes matching incidents between StartsAt and EndsAt: a
// maintenance window or a known attack being handled. Who created it and
// why is mandatory, so a muted page can always be explained.
type Silence struct {
	ID        string    `json:"id" yaml:"id"`
	Matchers  []string  `json:"matchers" yaml:"matchers"`
	StartsAt  time.Time `json:"starts_at" yaml:"starts_at"`
	EndsAt    time.Time `json:"ends_at" yaml:"ends_at"`
	CreatedBy string    `json:"created_by" yaml:"created_by"`
	Comment   string    `json:"comment" yaml:"comment"`
	CreatedAt time.Time `json:"created_at" yaml:"-"`
	UpdatedAt time.Time `json:"updated_at" yaml:"-"`
	// Source is "config" for silences from the YAML file (read-only in the
	// API) and "api" otherwise.
	Source   string `json:"source" yaml:"-"`
	compiled Matchers
}

// MaxSilence bounds a silence: an unbounded mute is how pages get lost.
const MaxSilence = 90 * 24 * time.Hour

// Validate checks the silence and compiles its matchers; key prefixes errors.
func (s *Silence) Validate(key string) error {
	var errs []error
	ms, err := ParseMatchers(key+".matchers", s.Matchers)
	errs = append(errs, err)
	if len(s.Matchers) == 0 {
		errs = append(errs, fmt.Errorf("%s.matchers: at least one matcher is required", key))
	}
	if s.StartsAt.IsZero() || s.EndsAt.IsZero() {
		errs = append(errs, fmt.Errorf("%s.starts_at/ends_at: both are required", key))
	} else if !s.EndsAt.After(s.StartsAt) {
		errs = append(errs, fmt.Errorf("%s.ends_at: must be after starts_at", key))
	} else if s.EndsAt.Sub(s.StartsAt) > MaxSilence {
		errs = append(errs, fmt.Errorf("%s.ends_at: a silence may last at most %s", key, MaxSilence))
	}
	if s.CreatedBy == "" {
		errs = append(errs, fmt.Errorf("%s.created_by: required", key))
	}
	if s.Comment == "" {
		errs = append(errs, fmt.Errorf("%s.comment: required (say why)", key))
	}
	s.compiled = ms
	return errors.Join(errs...)
}

// Active reports whether the silence mutes at now.
func (s *Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// Matches reports whether the silence covers labels (at any time).
func (s *Silence) Matches(labels map[string]string) bool {
	if s.compiled == nil {
		if err := s.Validate("silence"); err != nil {
			return false
		}
	}
	return s.compiled.Matches(labels)
}

// Silenced returns the first active silence covering labels, or nil.
func Silenced(silences []*Silence, labels map[string]string, now time.Time) *Silence {
	for _, s := range silences {
		if s.Active(now) && s.Matches(labels) {
			return s
		}
	}
	return nil
}
