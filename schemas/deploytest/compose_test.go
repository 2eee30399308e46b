package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	Profiles    []string          `yaml:"profiles"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy", "compose", "compose.yaml")), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

var interpolation = regexp.MustCompile(`^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$`)

// TestCompose: the images issue 7 asks for, our services from the
// Dockerfile under its binary names, mounted files that exist, each
// service's configured secrets passed from the environment (never literal).
func TestCompose(t *testing.T) {
	c := loadCompose(t)
	dir := path("deploy", "compose")
	builds, _ := dockerBuilds(t)
	for _, want := range append([]string{"kafka", "clickhouse", "topics", "migrate"}, services...) {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no service %q", want)
		}
	}
	if img := c.Services["kafka"].Image; !strings.HasPrefix(img, "apache/kafka:3.") {
		t.Errorf("kafka image %q: want apache/kafka:3.x (kafka-go needs protocol versions Kafka 4 removed)", img)
	}
	if env := c.Services["kafka"].Environment; !strings.Contains(env["KAFKA_PROCESS_ROLES"], "controller") || env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] != "false" {
		t.Errorf("kafka: want KRaft (process roles with controller) and no topic auto-creation, got %v", env)
	}
	if img := c.Services["clickhouse"].Image; !strings.HasPrefix(img, "clickhouse/clickhouse-server:") {
		t.Errorf("clickhouse image %q", img)
	}
	for _, name := range append([]string{"topics", "migrate"}, services...) {
		if c.Services[name].Build == nil || len(c.Services[name].Command) == 0 {
			t.Errorf("%s: want build (deploy/docker/Dockerfile) and a command", name)
		}
	}
	for name, s := range c.Services {
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		for k, v := range s.Environment {
			if secretish(k) && !interpolation.MatchString(v) {
				t.Errorf("%s: environment %s holds a literal, want ${VAR} from .env", name, k)
			}
		}
		mounts := map[string]string{} // container path -> host file
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: volume %q", name, v)
				continue
			}
			src := parts[0]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				host := filepath.Join(dir, src)
				if _, err := os.Stat(host); err != nil {
					t.Errorf("%s: mounts %s, which does not exist: %v", name, src, err)
				}
				mounts[parts[1]] = host
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: named volume %s not declared", name, src)
			}
		}
		if s.Build == nil {
			continue
		}
		if df := filepath.Join(dir, s.Build.Context, s.Build.Dockerfile); df != path("deploy", "docker", "Dockerfile") {
			t.Errorf("%s: builds %s, want deploy/docker/Dockerfile", name, df)
		}
		if filepath.Join(dir, s.Build.Context) != root {
			t.Errorf("%s: build context %s, want the repo root (go.work)", name, s.Build.Context)
		}
		if len(s.Command) == 0 {
			t.Errorf("%s: no command", name)
			continue
		}
		if _, ok := builds[s.Command[0]]; !ok {
			t.Errorf("%s: command %s is not a binary the Dockerfile builds", name, s.Command[0])
		}
		svc := s.Command[0]
		if !contains(services, svc) {
			continue
		}
		// The config named by -config is mounted, and its secrets are passed.
		cfgPath := flagValue(s.Command, "-config")
		host, ok := mounts[cfgPath]
		if !ok {
			t.Errorf("%s: -config %s is not a mounted file", name, cfgPath)
			continue
		}
		rel, _ := filepath.Rel(root, host)
		cfg := loadConfig(t, rel)
		for _, env := range cfg.envRefs() {
			if _, ok := s.Environment[env]; !ok {
				t.Errorf("%s: config %s reads $%s, which the service's environment does not set", name, rel, env)
			}
		}
		if inv := dig(cfg, "inventory"); inv != "" {
			if _, ok := mounts[inv]; !ok {
				t.Errorf("%s: inventory %s is not mounted", name, inv)
			}
		}
		if inv := dig(cfg, "inventory", "path"); inv != "" {
			if _, ok := mounts[inv]; !ok {
				t.Errorf("%s: inventory.path %s is not mounted", name, inv)
			}
		}
		port := cfg.httpPort(t, svc)
		if !anyHasSuffix(s.Ports, ":"+port) {
			t.Errorf("%s: metrics port %s (from its config) not published on loopback, ports %v", name, port, s.Ports)
		}
	}
	for _, p := range []string{"2055:2055/udp", "4739:4739/udp", "6343:6343/udp"} {
		if !contains(c.Services["collector"].Ports, p) {
			t.Errorf("collector does not publish %s", p)
		}
	}
	// Every ${VAR:?} the file needs is documented in .env.example.
	example := readFile(t, "deploy", "compose", ".env.example")
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+):\?`).FindAllStringSubmatch(readFile(t, "deploy", "compose", "compose.yaml"), -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(example) {
			t.Errorf(".env.example lacks %s, which compose.yaml requires", m[1])
		}
	}
}

// TestComposeClickHouseUsers: the users file is XML that reads each password from the environment.
func TestComposeClickHouseUsers(t *testing.T) {
	x := readFile(t, "deploy", "compose", "clickhouse", "users.d", "flowsentry.xml")
	if err := checkXML(x); err != nil {
		t.Fatal(err)
	}
	c := loadCompose(t)
	for _, m := range regexp.MustCompile(`from_env="([A-Z0-9_]+)"`).FindAllStringSubmatch(x, -1) {
		if _, ok := c.Services["clickhouse"].Environment[m[1]]; !ok {
			t.Errorf("users.d reads %s, which the clickhouse service does not get", m[1])
		}
	}
	if strings.Contains(x, "<password>") {
		t.Error("literal <password> in users.d")
	}
}

func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func anyHasSuffix(list []string, suffix string) bool {
	for _, x := range list {
		if strings.HasSuffix(x, suffix) {
			return true
		}
	}
	return false
}
