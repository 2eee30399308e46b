package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutes(t *testing.T) {
	srv := server(t)
	cases := []struct {
		path, status, ctype, body string
	}{
		{"/", "200", "text/html", `<script type="module" src="/ui/app.js">`},
		{"/incidents", "200", "text/html", `id="main"`},
		{"/incidents/an-7f3c9e21", "200", "text/html", `id="main"`},
		{"/subnets?customer=acme", "200", "text/html", `id="main"`},
		{"/capacity", "200", "text/html", `id="main"`},
		{"/silences", "200", "text/html", `id="main"`},
		{"/ui/app.js", "200", "text/javascript", "import"},
		{"/ui/pages/incident.js", "200", "text/javascript", "trafficChart"},
		{"/ui/style.css", "200", "text/css", "svg.chart"},
		{"/ui/favicon.svg", "200", "image/svg+xml", "<svg"},
		{"/ui/missing.js", "404", "", ""},
		{"/incidents/a/b", "404", "", ""},
		{"/elsewhere", "404", "", ""},
	}
	for _, tc := range cases {
		resp, body := fetch(t, srv.URL+tc.path)
		if got := resp.Status[:3]; got != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) ||
			!strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %s %q, want %s %s with %q", tc.path, resp.Status, resp.Header.Get("Content-Type"), tc.status, tc.ctype, tc.body)
			continue
		}
		if tc.status == "200" {
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: security headers missing: %v", tc.path, resp.Header)
			}
		}
	}
}

// TestModulesResolve: every import of every script, and every asset the
// page names, is embedded, so the console cannot ship a broken import.
func TestModulesResolve(t *testing.T) {
	assets, _ := fs.Sub(static, "static")
	imports := regexp.MustCompile(`(?m)(?:^import .* from|^import) '([^']+)'`)
	refs := regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`)
	n := 0
	err := fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, p)
		for _, m := range imports.FindAllStringSubmatch(string(b), -1) {
			target := path.Join(path.Dir(p), m[1])
			if _, err := fs.Stat(assets, target); err != nil {
				t.Errorf("%s imports %s: not embedded", p, m[1])
			}
			n++
		}
		for _, m := range refs.FindAllStringSubmatch(string(b), -1) {
			if _, err := fs.Stat(assets, strings.TrimPrefix(m[1], "/ui/")); err != nil {
				t.Errorf("%s names %s: not embedded", p, m[1])
			}
			n++
		}
		return nil
	})
	if err != nil || n < 10 {
		t.Fatalf("walked %d references: %v", n, err)
	}
}

// TestNothingFromElsewhere: the machine may be offline and the page must
// not load code from a CDN; the only absolute URL is SVG's namespace.
func TestNothingFromElsewhere(t *testing.T) {
	assets, _ := fs.Sub(static, "static")
	url := regexp.MustCompile(`(?:https?:)?//[a-zA-Z0-9.-]+\.[a-z]{2,}[^\s"'` + "`" + `]*`)
	_ = fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, p)
		for _, u := range url.FindAllString(string(b), -1) {
			if u != "http://www.w3.org/2000/svg" {
				t.Errorf("%s refers to %s", p, u)
			}
		}
		return nil
	})
}
