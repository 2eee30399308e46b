package deploytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var configDirs = []string{"deploy/compose/config", "deploy/k8s/base/config", "deploy/k8s/overlays/production/config"}

// TestConfigsPassServiceCheck runs each service's own `-check` on every
// config under deploy/ (unknown keys, bad values, missing secrets, the
// inventory and TLS files), with /etc/flowsentry and /var/lib/flowsentry
// moved into a temporary directory and placeholder secrets in the environment.
func TestConfigsPassServiceCheck(t *testing.T) {
	bins := binaries(t)
	for _, dir := range configDirs {
		tmp := t.TempDir()
		etc, state := filepath.Join(tmp, "etc"), filepath.Join(tmp, "var")
		for _, d := range []string{filepath.Join(etc, "tls"), filepath.Join(state, "alerter")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		writeCA(t, filepath.Join(etc, "tls", "ca.pem"))
		if err := os.WriteFile(filepath.Join(etc, "inventory.yaml"), []byte(readFile(t, dir, "inventory.yaml")), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, svc := range services {
			text := strings.NewReplacer("/etc/flowsentry", etc, "/var/lib/flowsentry", state).Replace(readFile(t, dir, svc+".yaml"))
			cfgFile := filepath.Join(tmp, svc+".yaml")
			if err := os.WriteFile(cfgFile, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			env := placeholderEnv(loadConfig(t, dir, svc+".yaml").envRefs())
			if out, err := runCheck(bins, svc, cfgFile, env); err != nil {
				t.Errorf("%s/%s.yaml: %s -check: %v\n%s", dir, svc, svc, err, out)
			}
			// The checker bites: the same file with an unknown key, or with its secrets unset, fails.
			bad := filepath.Join(tmp, svc+".bad.yaml")
			if err := os.WriteFile(bad, []byte(text+"\nno_such_key: 1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := runCheck(bins, svc, bad, env); err == nil || !strings.Contains(string(out), "no_such_key") {
				t.Errorf("%s -check accepted an unknown key (%v): %s", svc, err, out)
			}
		}
	}
}

// TestConfigSecretsAreChecked: an alerter config whose secret variables are
// unset fails -check, so the env cross-checks above test something real.
func TestConfigSecretsAreChecked(t *testing.T) {
	bins := binaries(t)
	tmp := t.TempDir()
	text := strings.NewReplacer("/etc/flowsentry", tmp, "/var/lib/flowsentry", tmp).Replace(readFile(t, "deploy", "compose", "config", "alerter.yaml"))
	if err := os.WriteFile(filepath.Join(tmp, "inventory.yaml"), []byte(readFile(t, "deploy", "compose", "config", "inventory.yaml")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(tmp, "alerter.yaml")
	if err := os.WriteFile(cfgFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	refs := loadConfig(t, "deploy", "compose", "config", "alerter.yaml").envRefs()
	env := placeholderEnv(refs)
	if out, err := runCheck(bins, "alerter", cfgFile, env); err != nil {
		t.Fatalf("with secrets: %v\n%s", err, out)
	}
	for i, ref := range refs {
		if ref == "FLOWSENTRY_ALERTER_TOKENS" {
			continue // tokens_env may be empty: the API then refuses every request
		}
		without := append(append([]string{}, env[:i]...), env[i+1:]...)
		if out, err := runCheck(bins, "alerter", cfgFile, without); err == nil {
			t.Errorf("alerter -check passed without $%s: %s", ref, out)
		}
	}
}

func runCheck(bins, svc, cfgFile string, env []string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(bins, svc), "-check", "-config", cfgFile)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	return cmd.CombinedOutput()
}

// placeholderEnv gives every referenced secret a plausible value.
func placeholderEnv(refs []string) []string {
	var env []string
	for _, r := range refs {
		v := "placeholder-secret"
		switch {
		case strings.Contains(r, "WEBHOOK"):
			v = "https://hooks.example.net/services/T000/B000/XXXX"
		case strings.Contains(r, "TOKENS"):
			v = "noc:operator:0123456789abcdef0123456789abcdef"
		}
		env = append(env, r+"="+v)
	}
	return env
}

func writeCA(t *testing.T, file string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deploytest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}
