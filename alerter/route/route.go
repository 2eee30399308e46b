// Package route decides who hears about an incident, in the spirit of
// Prometheus Alertmanager: a tree of routes with label matchers, grouping
// parameters inherited down the tree, inhibition rules (one firing incident
// mutes related ones) and time-bounded silences.
package route

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
)

// LabelNames are the labels an incident carries (see incident.Labels).
var LabelNames = []string{"id", "customer", "subnet", "direction", "class", "severity", "scope"}

// Matcher is one `name op value` test. Ops: = != =~ !~ and, for severity
// only, >= and <= by rank (info < warning < critical).
type Matcher struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Value string `json:"value"`
	re    *regexp.Regexp
}

var matcherSyntax = regexp.MustCompile(`^\s*([a-z_]+)\s*(=~|!~|!=|>=|<=|=)\s*(.*?)\s*$`)

// ParseMatcher parses e.g. `class=~"syn_flood|udp_flood"` or `severity>=warning`.
func ParseMatcher(s string) (Matcher, error) {
	m := matcherSyntax.FindStringSubmatch(s)
	if m == nil {
		return Matcher{}, fmt.Errorf("%q is not `label op value` (ops: = != =~ !~ >= <=)", s)
	}
	v := m[3]
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return NewMatcher(m[1], m[2], v)
}

// NewMatcher checks and compiles a matcher.
func NewMatcher(name, op, value string) (Matcher, error) {
	mt := Matcher{Name: name, Op: op, Value: value}
	if !slices.Contains(LabelNames, name) {
		return mt, fmt.Errorf("unknown label %q (labels: %s)", name, strings.Join(LabelNames, ", "))
	}
	switch op {
	case "=", "!=":
	case "=~", "!~":
		// Anchored like Alertmanager: the value must match as a whole.
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return mt, fmt.Errorf("bad regular expression %q: %w", value, err)
		}
		mt.re = re
	case ">=", "<=":
		if name != "severity" || incident.SeverityRank(value) == 0 {
			return mt, fmt.Errorf("%s only compares severity with info, warning or critical", op)
		}
	default:
		return mt, fmt.Errorf("unknown operator %q", op)
	}
	return mt, nil
}

// Matches tests labels.
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Op {
	case "=":
		return v == m.Value
	case "!=":
		return v != m.Value
	case "=~":
		return m.re.MatchString(v)
	case "!~":
		return !m.re.MatchString(v)
	case ">=":
		return incident.SeverityRank(v) >= incident.SeverityRank(m.Value)
	case "<=":
		r := incident.SeverityRank(v)
		return r > 0 && r <= incident.SeverityRank(m.Value)
	}
	return false
}

func (m Matcher) String() string {
	if m.Op == "=~" || m.Op == "!~" {
		return fmt.Sprintf("%s%s%q", m.Name, m.Op, m.Value)
	}
	return m.Name + m.Op + m.Value
}

// Matchers match when every matcher does (an empty list matches all).
type Matchers []Matcher

func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// ParseMatchers parses a list; key names the list in errors.
func ParseMatchers(key string, ss []string) (Matchers, error) {
	var out Matchers
	var errs []error
	for i, s := range ss {
		m, err := ParseMatcher(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", key, i, err))
			continue
		}
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}

// Config is one node of the YAML routing tree. Unset fields inherit from
// the parent; the root must name a receiver.
type Config struct {
	Receiver       string         `yaml:"receiver"`
	Matchers       []string       `yaml:"matchers"`
	GroupBy        []string       `yaml:"group_by"`
	GroupWait      *time.Duration `yaml:"group_wait"`
	GroupInterval  *time.Duration `yaml:"group_interval"`
	RepeatInterval *time.Duration `yaml:"repeat_interval"`
	// Continue: keep looking at the following siblings after this route
	// matched (e.g. the customer receiver beside the NOC's).
	Continue bool     `yaml:"continue"`
	Routes   []Config `yaml:"routes"`
}

// Route is a compiled node.
type Route struct {
	ID             string // position in the tree, e.g. "0.2.1": part of group keys
	Receiver       string
	Matchers       Matchers
	GroupBy        []string
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	Continue       bool
	Routes         []*Route
}

// Defaults for the root, as in Alertmanager.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// Compile checks the tree (errors name the key, e.g. route.routes[1].matchers[0])
// against the known receivers and returns the root.
func Compile(c Config, receivers []string) (*Route, error) {
	root := &Route{ID: "0", GroupWait: DefaultGroupWait, GroupInterval: DefaultGroupInterval,
		RepeatInterval: DefaultRepeatInterval}
	var errs []error
	if len(c.Matchers) > 0 {
		errs = append(errs, errors.New("route.matchers: the root route matches everything; put matchers on child routes"))
	}
	if c.Receiver == "" {
		errs = append(errs, errors.New("route.receiver: required on the root route"))
	}
	compile(c, root, "route", receivers, &errs)
	return root, errors.Join(errs...)
}

func compile(c Config, r *Route, key string, receivers []string, errs *[]error) {
	if c.Receiver != "" {
		r.Receiver = c.Receiver
		if !slices.Contains(receivers, c.Receiver) {
			*errs = append(*errs, fmt.Errorf("%s.receiver: no receiver named %q", key, c.Receiver))
		}
	}
	ms, err := ParseMatchers(key+".matchers", c.Matchers)
	if err != nil {
		*errs = append(*errs, err)
	}
	r.Matchers = ms
	if c.GroupBy != nil {
		r.GroupBy = nil
		for i, l := range c.GroupBy {
			if l != "..." && !slices.Contains(LabelNames, l) {
				*errs = append(*errs, fmt.Errorf("%s.group_by[%d]: unknown label %q", key, i, l))
			}
			r.GroupBy = append(r.GroupBy, l)
		}
	}
	dur := func(name string, p *time.Duration, dst *time.Duration) {
		if p == nil {
			return
		}
		if *p < 0 || (name != "group_wait" && *p == 0) {
			*errs = append(*errs, fmt.Errorf("%s.%s: %s is not a positive duration", key, name, *p))
		}
		*dst = *p
	}
	dur("group_wait", c.GroupWait, &r.GroupWait)
	dur("group_interval", c.GroupInterval, &r.GroupInterval)
	dur("repeat_interval", c.RepeatInterval, &r.RepeatInterval)
	r.Continue = c.Continue
	for i, cc := range c.Routes {
		child := &Route{ID: fmt.Sprintf("%s.%d", r.ID, i), Receiver: r.Receiver,
			GroupBy: slices.Clone(r.GroupBy), GroupWait: r.GroupWait, GroupInterval: r.GroupInterval,
			RepeatInterval: r.RepeatInterval}
		compile(cc, child, fmt.Sprintf("%s.routes[%d]", key, i), receivers, errs)
		r.Routes = append(r.Routes, child)
	}
}

// Match returns the routes an incident with labels goes to: depth first,
// the first matching child wins unless it says continue; a node none of
// whose children matched takes the incident itself.
func (r *Route) Match(labels map[string]string) []*Route {
	if !r.Matchers.Matches(labels) {
		return nil
	}
	var out []*Route
	for _, c := range r.Routes {
		m := c.Match(labels)
		out = append(out, m...)
		if len(m) > 0 && !c.Continue {
			return out
		}
	}
	if len(out) == 0 {
		out = append(out, r)
	}
	return out
}

// GroupKey is the aggregation group of labels under this route.
func (r *Route) GroupKey(labels map[string]string) string {
	var b strings.Builder
	b.WriteString(r.ID)
	b.WriteString("{")
	names := r.GroupBy
	if slices.Contains(names, "...") {
		names = LabelNames
	}
	names = slices.Clone(names)
	slices.Sort(names)
	for i, n := range names {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", n, labels[n])
	}
	b.WriteString("}")
	return b.String()
}

// Walk calls f on every node.
func (r *Route) Walk(f func(*Route)) {
	f(r)
	for _, c := range r.Routes {
		c.Walk(f)
	}
}
