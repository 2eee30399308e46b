// Package console is the operator console: a web UI embedded in the
// alerter binary (as Alertmanager embeds its UI) and served beside the API.
// Plain HTML, CSS and JavaScript modules written for it, charts drawn as
// SVG by its own code: no build step, no CDN, nothing fetched at run time
// from elsewhere.
//
// The page shell and its assets are public; every piece of data comes from
// the token-authenticated API under /api/v1/ (alerter/api). The browser
// keeps the bearer token the user pasted in sessionStorage (gone when the
// tab closes) and sends it as an Authorization header: no cookie, hence no
// cross-site request can act with the user's rights.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// AssetPrefix is where the scripts and styles are served.
const AssetPrefix = "/ui/"

// Pages are the paths that serve the page shell; the scripts route on the
// path, so links such as links.console_url ".../incidents/{id}" work.
var Pages = []string{"/{$}", "/incidents", "/incidents/{id}", "/subnets", "/capacity", "/silences"}

// Register adds the console's routes to mux.
func Register(mux *http.ServeMux) {
	assets, _ := fs.Sub(static, "static")
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic("console: index.html not embedded: " + err.Error()) // a build defect, caught by the tests
	}
	files := http.StripPrefix(AssetPrefix, http.FileServerFS(assets))
	mux.Handle("GET "+AssetPrefix, secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Embedded files carry no modification time: revalidate each load
		// so a new binary's scripts are picked up.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	shell := secure(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index)
	}))
	for _, p := range Pages {
		mux.Handle("GET "+p, shell)
	}
}

// secure sets headers that keep the console's pages from running anything
// but its own scripts or being framed by another site.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}
