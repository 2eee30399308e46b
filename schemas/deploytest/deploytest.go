// Package deploytest checks the deployment files under deploy/ (compose,
// Kubernetes, systemd, Prometheus, Grafana, Dockerfile) against the code:
// metric names against the Go source, binary names against `make build`,
// configs against the services' own -check, secrets against what the
// configs ask for. Its tests need no running service; the helpers here are
// the parts worth testing on their own (PromQL names, the metric catalogue).
package deploytest

import (
	"encoding/xml"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// RepoRoot walks up from dir to the directory holding go.work.
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.work above " + dir)
		}
		d = parent
	}
}

// Catalogue is the set of Prometheus series names the Go source registers.
type Catalogue struct {
	Names    map[string]string // name -> "file:line" where it is declared
	Prefixes []string          // whole families from client_golang collectors (go_, process_)
}

// Has reports whether a series name is registered, histogram/summary
// suffixes included.
func (c Catalogue) Has(name string) bool {
	if _, ok := c.Names[name]; ok {
		return true
	}
	for _, p := range c.Prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ScanMetrics parses every non-test .go file under the given directories and
// collects metric names from client_golang option literals
// (prometheus.CounterOpts{Namespace, Subsystem, Name}, ...) and
// prometheus.NewDesc calls, resolving string constants of the same file.
func ScanMetrics(dirs ...string) (Catalogue, error) {
	cat := Catalogue{Names: map[string]string{}}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if name := d.Name(); name == "testdata" || strings.HasPrefix(name, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			scanFile(fset, f, &cat)
			return nil
		})
		if err != nil {
			return cat, err
		}
	}
	sort.Strings(cat.Prefixes)
	return cat, nil
}

func scanFile(fset *token.FileSet, f *ast.File, cat *Catalogue) {
	consts := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if gd, ok := n.(*ast.GenDecl); ok && gd.Tok == token.CONST {
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i], nil); ok {
							consts[name.Name] = s
						}
					}
				}
			}
		}
		return true
	})
	add := func(name string, pos token.Pos, histogram bool) {
		where := fset.Position(pos).String()
		cat.Names[name] = where
		if histogram {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				cat.Names[name+suffix] = where
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CompositeLit:
			sel, ok := x.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			parts := map[string]string{}
			for _, elt := range x.Elts {
				kv, ok := elt.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, ok := kv.Key.(*ast.Ident)
				if !ok {
					continue
				}
				if s, ok := stringLit(kv.Value, consts); ok {
					parts[key.Name] = s
				}
			}
			if parts["Name"] == "" {
				return true
			}
			var full []string
			for _, k := range []string{"Namespace", "Subsystem", "Name"} {
				if parts[k] != "" {
					full = append(full, parts[k])
				}
			}
			kind := sel.Sel.Name
			add(strings.Join(full, "_"), x.Pos(), kind == "HistogramOpts" || kind == "SummaryOpts")
		case *ast.CallExpr:
			sel, ok := x.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "NewDesc":
				if len(x.Args) > 0 {
					if s, ok := stringLit(x.Args[0], consts); ok {
						add(s, x.Pos(), false)
					}
				}
			case "NewGoCollector":
				cat.Prefixes = appendOnce(cat.Prefixes, "go_")
			case "NewProcessCollector":
				cat.Prefixes = appendOnce(cat.Prefixes, "process_")
			}
		}
		return true
	})
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func stringLit(e ast.Expr, consts map[string]string) (string, bool) {
	switch v := e.(type) {
	case *ast.BasicLit:
		if v.Kind == token.STRING {
			s, err := strconv.Unquote(v.Value)
			return s, err == nil
		}
	case *ast.Ident:
		s, ok := consts[v.Name]
		return s, ok
	}
	return "", false
}

// promqlKeywords are identifiers of PromQL that are not series names.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true,
	"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true, "atan2": true,
	// aggregations may put "by (...)" before their parenthesis
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// labelListKeywords are followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true}

// MetricNames returns the series names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, function calls,
// keywords, numbers and label lists (by, on, ...) are taken out. It is not a
// parser; it errs only on unbalanced brackets and quotes.
func MetricNames(expr string) ([]string, error) {
	s, err := blankNested(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n') {
				k++
			}
			switch {
			case labelListKeywords[word]:
				if k < len(s) && s[k] == '(' {
					end := strings.IndexByte(s[k:], ')')
					if end < 0 {
						return nil, fmt.Errorf("%q: unclosed label list after %s", expr, word)
					}
					j = k + end + 1
				}
			case k < len(s) && s[k] == '(': // function or aggregation
			case promqlKeywords[word]:
			default:
				if !seen[word] {
					seen[word] = true
					names = append(names, word)
				}
			}
			i = j
		case c >= '0' && c <= '9' || c == '.':
			// number or duration (5m, 1e6, 0x1f): skip its letters too
			for i < len(s) && (isIdentPart(s[i]) || s[i] == '.' || ((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E'))) {
				i++
			}
		default:
			i++
		}
	}
	return names, nil
}

// blankNested replaces quoted strings, {label matchers} and [ranges] by spaces.
func blankNested(expr string) (string, error) {
	b := []byte(expr)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"', '\'', '`':
			q := b[i]
			j := i + 1
			for ; j < len(b) && b[j] != q; j++ {
				if b[j] == '\\' && q != '`' {
					j++
				}
			}
			if j >= len(b) {
				return "", fmt.Errorf("%q: unterminated string", expr)
			}
			for k := i; k <= j; k++ {
				b[k] = ' '
			}
			i = j
		case '{', '[':
			closer := byte('}')
			if b[i] == '[' {
				closer = ']'
			}
			j := i + 1
			for ; j < len(b) && b[j] != closer; j++ {
				if b[j] == '"' || b[j] == '\'' || b[j] == '`' { // string inside a matcher
					q := b[j]
					for j++; j < len(b) && b[j] != q; j++ {
						if b[j] == '\\' {
							j++
						}
					}
				}
			}
			if j >= len(b) {
				return "", fmt.Errorf("%q: unclosed %c", expr, b[i])
			}
			for k := i; k <= j; k++ {
				b[k] = ' '
			}
			i = j
		case '}', ']':
			return "", fmt.Errorf("%q: unbalanced %c", expr, b[i])
		}
	}
	return string(b), nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// headingRe matches a Markdown ATX heading.
var headingRe = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)

// Anchors returns the GitHub-style anchors of a Markdown document's headings.
func Anchors(markdown string) map[string]bool {
	out := map[string]bool{}
	for _, m := range headingRe.FindAllStringSubmatch(markdown, -1) {
		out[Slug(m[1])] = true
	}
	return out
}

// Slug is GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens.
func Slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// UnitFile is a parsed systemd unit: section -> key -> values in order.
type UnitFile map[string]map[string][]string

// ParseUnit reads the INI-like systemd syntax (comments, sections, repeated
// keys, backslash continuations).
func ParseUnit(text string) (UnitFile, error) {
	u := UnitFile{}
	section := ""
	lines := strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n")
	for n, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section %q", n+1, line)
			}
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: not key=value in a section: %q", n+1, line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	return u, nil
}

// Get returns the last value of section.key ("" when absent).
func (u UnitFile) Get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// checkXML reports whether text is well-formed XML.
func checkXML(text string) error {
	d := xml.NewDecoder(strings.NewReader(text))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
