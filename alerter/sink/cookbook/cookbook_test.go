package cookbook

import (
	"os"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, md, err string
		n             int
	}{
		{"two", "# x\n### 1. a\ntext\n```sql\nSELECT 1\n```\n### 2. b\n```sql\nSELECT\n 2\n```\n", "", 2},
		{"missing block", "### 1. a\n### 2. b\n```sql\nSELECT 2\n```\n", "no sql block", 0},
		{"two blocks", "### 1. a\n```sql\nSELECT 1\n```\n```sql\nSELECT 2\n```\n", "two sql blocks", 0},
		{"gap", "### 1. a\n```sql\nSELECT 1\n```\n### 3. c\n```sql\nSELECT 3\n```\n", "follows query 1", 0},
		{"bad heading", "### a\n", "is not", 0},
		{"unterminated", "### 1. a\n```sql\nSELECT 1\n", "unterminated", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qs, err := Parse(tc.md)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(qs) != tc.n {
				t.Fatalf("got %d queries, %v", len(qs), err)
			}
			if qs[1].SQL != "SELECT\n 2" || qs[1].Title != "b" {
				t.Fatalf("query 2 = %+v", qs[1])
			}
		})
	}
}

// TestCookbookHasTenQueries parses the real document (no services needed).
func TestCookbookHasTenQueries(t *testing.T) {
	b, err := os.ReadFile("../../../docs/sql-cookbook.md")
	if err != nil {
		t.Fatal(err)
	}
	qs, err := Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 10 {
		t.Fatalf("%d queries, the cookbook promises at least ten", len(qs))
	}
	for _, q := range qs {
		if !strings.Contains(q.SQL, "flowsentry.") {
			t.Errorf("query %d does not name database flowsentry (the tests rewrite it)", q.Number)
		}
	}
}
