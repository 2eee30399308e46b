package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const binPrefix = "/opt/flowsentry/bin/"

func loadUnit(t *testing.T, name string) UnitFile {
	t.Helper()
	u, err := ParseUnit(readFile(t, "deploy", "systemd", name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return u
}

// TestSystemdUnits: one hardened unit per service, running a `make build`
// binary with its config, secrets from an EnvironmentFile, state only in
// its StateDirectory (which must hold the config's state paths).
func TestSystemdUnits(t *testing.T) {
	made := makeBuildNames(t)
	hardening := map[string]string{
		"ProtectSystem": "strict", "NoNewPrivileges": "yes", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "RestrictSUIDSGID": "yes",
		"SystemCallArchitectures": "native", "User": "flowsentry",
	}
	units := append(append([]string{}, services...), "schema")
	for _, svc := range units {
		name := "flowsentry-" + svc + ".service"
		u := loadUnit(t, name)
		for k, v := range hardening {
			if got := u.Get("Service", k); got != v {
				t.Errorf("%s: %s=%q, want %q", name, k, got, v)
			}
		}
		if svc != "collector" && u.Get("Service", "CapabilityBoundingSet") != "" {
			t.Errorf("%s: CapabilityBoundingSet=%q, want empty", name, u.Get("Service", "CapabilityBoundingSet"))
		}
		if u.Get("Service", "EnvironmentFile") == "" {
			t.Errorf("%s: secrets must come from an EnvironmentFile", name)
		}
		if u.Get("Install", "WantedBy") == "" {
			t.Errorf("%s: no [Install] WantedBy", name)
		}
		for _, exec := range append(u["Service"]["ExecStart"], u["Service"]["ExecStartPre"]...) {
			f := strings.Fields(exec)
			bin := f[0]
			if !strings.HasPrefix(bin, binPrefix) || !made[strings.TrimPrefix(bin, binPrefix)] {
				t.Errorf("%s: runs %s, want %s<a `make build` binary>", name, bin, binPrefix)
			}
			if svc != "schema" {
				if strings.TrimPrefix(bin, binPrefix) != svc || !strings.Contains(exec, "-config /etc/flowsentry/"+svc+".yaml") {
					t.Errorf("%s: %q, want %s%s -config /etc/flowsentry/%s.yaml", name, exec, binPrefix, svc, svc)
				}
			}
		}
		if svc == "schema" {
			continue
		}
		// State paths of the deploy config must lie in the unit's StateDirectory.
		cfg := loadConfig(t, "deploy", "compose", "config", svc+".yaml")
		var statePaths []string
		if svc == "collector" {
			statePaths = append(statePaths, dig(cfg, "templates", "state_file"))
		}
		if svc == "alerter" {
			statePaths = append(statePaths, dig(cfg, "state", "path"), dig(cfg, "state", "dead_letter_path"))
		}
		dirs := strings.Fields(u.Get("Service", "StateDirectory"))
		for _, p := range statePaths {
			ok := false
			for _, d := range dirs {
				ok = ok || filepath.Dir(p) == filepath.Join("/var/lib", d)
			}
			if !ok {
				t.Errorf("%s: state file %s is not in StateDirectory=%v (ProtectSystem=strict makes it read-only)", name, p, dirs)
			}
		}
	}
	col := loadUnit(t, "flowsentry-collector.service")
	if col.Get("Service", "AmbientCapabilities") != "CAP_NET_ADMIN" || col.Get("Service", "CapabilityBoundingSet") != "CAP_NET_ADMIN" {
		t.Error("collector: want exactly CAP_NET_ADMIN (SO_RCVBUFFORCE) as ambient and bounding capability")
	}
	sysusers := readFile(t, "deploy", "systemd", "flowsentry.sysusers")
	if !strings.Contains(sysusers, "u flowsentry ") {
		t.Error("flowsentry.sysusers does not create the flowsentry user")
	}
}

// TestSystemdVerify lets systemd itself parse the units (unknown keys, bad
// values), with ExecStart pointing at freshly built binaries.
func TestSystemdVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze", false)
	bins := binaries(t)
	dir := t.TempDir()
	entries, _ := filepath.Glob(path("deploy", "systemd", "*.service"))
	var names []string
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), binPrefix, bins+"/")
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(e)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(e))
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, names...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func dig(c serviceConfig, keys ...string) string {
	var v any = map[string]any(c)
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}
