package route

import (
	"errors"
	"fmt"
	"slices"
)

// InhibitConfig is one YAML inhibition rule: while an incident matching
// source_matchers fires, incidents matching target_matchers that have the
// same values for every label in equal are muted.
type InhibitConfig struct {
	SourceMatchers []string `yaml:"source_matchers"`
	TargetMatchers []string `yaml:"target_matchers"`
	Equal          []string `yaml:"equal"`
}

// InhibitRule is a compiled rule.
type InhibitRule struct {
	Index  int
	Source Matchers
	Target Matchers
	Equal  []string
}

// CompileInhibitRules checks the rules; errors name inhibit_rules[i].*.
func CompileInhibitRules(cs []InhibitConfig) ([]InhibitRule, error) {
	var out []InhibitRule
	var errs []error
	for i, c := range cs {
		key := fmt.Sprintf("inhibit_rules[%d]", i)
		src, err := ParseMatchers(key+".source_matchers", c.SourceMatchers)
		errs = append(errs, err)
		tgt, err := ParseMatchers(key+".target_matchers", c.TargetMatchers)
		errs = append(errs, err)
		if len(c.SourceMatchers) == 0 || len(c.TargetMatchers) == 0 {
			errs = append(errs, fmt.Errorf("%s: source_matchers and target_matchers are required", key))
		}
		for j, l := range c.Equal {
			if !slices.Contains(LabelNames, l) {
				errs = append(errs, fmt.Errorf("%s.equal[%d]: unknown label %q", key, j, l))
			}
		}
		out = append(out, InhibitRule{Index: i, Source: src, Target: tgt, Equal: c.Equal})
	}
	return out, errors.Join(errs...)
}

// Inhibited reports whether target is muted by one of the firing sources and
// by which rule and source. An incident never inhibits itself.
func Inhibited(rules []InhibitRule, target map[string]string, firing []map[string]string) (rule int, source string, ok bool) {
	for _, r := range rules {
		if !r.Target.Matches(target) {
			continue
		}
	sources:
		for _, s := range firing {
			if s["id"] == target["id"] || !r.Source.Matches(s) {
				continue
			}
			for _, l := range r.Equal {
				if s[l] != target[l] {
					continue sources
				}
			}
			return r.Index, s["id"], true
		}
	}
	return -1, "", false
}
