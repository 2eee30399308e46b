// Package cookbook reads docs/sql-cookbook.md: the analysts' questions and
// their SQL. Its test runs every query on both ClickHouse engines, so the
// document cannot drift from what works.
package cookbook

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Query is one "### N. title" section of the cookbook.
type Query struct {
	Number int
	Title  string
	SQL    string
}

var heading = regexp.MustCompile(`^### (\d+)\. (.+)$`)

// Parse extracts the queries. Each numbered heading must be followed by
// exactly one sql code block before the next heading; numbers run 1..n.
func Parse(md string) ([]Query, error) {
	var out []Query
	var cur *Query
	inSQL := false
	var sql strings.Builder
	for i, line := range strings.Split(md, "\n") {
		switch {
		case inSQL && strings.TrimSpace(line) == "```":
			inSQL = false
			cur.SQL = strings.TrimSpace(sql.String())
			sql.Reset()
		case inSQL:
			sql.WriteString(line)
			sql.WriteString("\n")
		case strings.HasPrefix(line, "### "):
			m := heading.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: heading %q is not \"### N. title\"", i+1, line)
			}
			if cur != nil && cur.SQL == "" {
				return nil, fmt.Errorf("query %d %q has no sql block", cur.Number, cur.Title)
			}
			n, _ := strconv.Atoi(m[1])
			if n != len(out)+1 {
				return nil, fmt.Errorf("line %d: query %d follows query %d", i+1, n, len(out))
			}
			out = append(out, Query{Number: n, Title: m[2]})
			cur = &out[len(out)-1]
		case strings.TrimSpace(line) == "```sql":
			if cur == nil {
				return nil, fmt.Errorf("line %d: sql block before the first query heading", i+1)
			}
			if cur.SQL != "" {
				return nil, fmt.Errorf("query %d %q has two sql blocks", cur.Number, cur.Title)
			}
			inSQL = true
		}
	}
	if inSQL {
		return nil, fmt.Errorf("unterminated sql block in query %d", cur.Number)
	}
	if cur != nil && cur.SQL == "" {
		return nil, fmt.Errorf("query %d %q has no sql block", cur.Number, cur.Title)
	}
	return out, nil
}
