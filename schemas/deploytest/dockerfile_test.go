package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// dockerBuilds are the binaries the Dockerfile's `go build -o /out/` makes,
// named like go build names them (the last element of the package path).
func dockerBuilds(t *testing.T) (map[string]string, string) {
	t.Helper()
	text := readFile(t, "deploy", "docker", "Dockerfile")
	joined := strings.ReplaceAll(text, "\\\n", " ")
	builds := map[string]string{}
	for _, line := range strings.Split(joined, "\n") {
		if !strings.Contains(line, "go build") {
			continue
		}
		for _, f := range strings.Fields(line[strings.Index(line, "go build"):]) {
			if strings.HasPrefix(f, "./") {
				builds[filepath.Base(f)] = strings.TrimPrefix(f, "./")
			}
			if f == "&&" {
				break
			}
		}
	}
	return builds, text
}

// TestDockerfile: the image builds every service from the go.work workspace
// under make-build names, copies each workspace module's go.mod, and runs
// as a non-root user.
func TestDockerfile(t *testing.T) {
	builds, text := dockerBuilds(t)
	made := makeBuildNames(t)
	var names []string
	for name, pkg := range builds {
		names = append(names, name)
		if !made[name] {
			t.Errorf("Dockerfile builds %s, which `make build` does not produce", name)
		}
		if _, err := os.Stat(path(pkg, "main.go")); err != nil {
			t.Errorf("Dockerfile builds ./%s: %v", pkg, err)
		}
	}
	sort.Strings(names)
	want := append(append([]string{}, services...), schemaCmd)
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("Dockerfile builds %v, want %v", names, want)
	}
	if !regexp.MustCompile(`(?m)^COPY go\.work go\.work\.sum`).MatchString(text) {
		t.Error("Dockerfile does not copy go.work and go.work.sum")
	}
	for _, m := range workModules(t) {
		if !strings.Contains(text, "COPY "+m+"/go.mod "+m+"/go.sum "+m+"/") {
			t.Errorf("go.work uses ./%s but the Dockerfile does not copy %s/go.mod (the module download step would fail)", m, m)
		}
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %v", froms)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, "go.work"))
	arg := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(text)
	if goVer == nil || arg == nil || !strings.HasPrefix(goVer[1], arg[1]) {
		t.Errorf("builder Go %v does not match go.work's go %v", arg, goVer)
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("final stage must run as non-root, USER %v", users)
	}
	if _, err := os.Stat(path("deploy", "docker", "Dockerfile.dockerignore")); err != nil {
		t.Errorf("no Dockerfile.dockerignore: the context would ship .run/ (Kafka and ClickHouse data): %v", err)
	}
}
