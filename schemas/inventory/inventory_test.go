package inventory

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `
protected: ["192.0.2.0/24", "203.0.113.0/24", "2001:db8::/32"]
default_granularity: {ipv4: 24, ipv6: 64}
customers:
  - id: acme
    name: ACME
    prefixes: ["198.51.100.0/24", "203.0.113.128/25", "2001:db8:100::/48"]
    contacts: {emails: ["noc@acme.example"], webhook_url: {env: ACME_HOOK}}
    notify: {classes: [syn_flood], min_severity: warning}
    floors: {bps: 1000000}
    ceilings: {bps: 10000000000}
  - id: globex
    name: Globex
    prefixes: ["198.51.100.64/26"]
`

func load(t *testing.T, s string) (*Inventory, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

func TestSubnetKey(t *testing.T) {
	inv, err := load(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr, key, customer string
		ok                  bool
	}{
		{"198.51.100.7", "198.51.100.0/24", "acme", true},
		{"198.51.100.70", "198.51.100.64/26", "globex", true}, // longest prefix wins
		{"203.0.113.200", "203.0.113.128/25", "acme", true},   // customer inside protected
		{"203.0.113.5", "203.0.113.0/24", "", true},           // protected, default /24
		{"192.0.2.99", "192.0.2.0/24", "", true},
		{"::ffff:198.51.100.7", "198.51.100.0/24", "acme", true}, // v4-mapped
		{"2001:db8:100:5::1", "2001:db8:100::/48", "acme", true},
		{"2001:db8:7:8:9::1", "2001:db8:7:8::/64", "", true}, // default /64
		{"8.8.8.8", "", "", false},
		{"2a00::1", "", "", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			k, m, ok := inv.SubnetKey(netip.MustParseAddr(tc.addr))
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if k.String() != tc.key {
				t.Errorf("key = %s, want %s", k, tc.key)
			}
			got := ""
			if m.Customer != nil {
				got = m.Customer.ID
			}
			if got != tc.customer {
				t.Errorf("customer = %q, want %q", got, tc.customer)
			}
		})
	}
	if c := inv.Customer("acme"); c == nil || c.Floors["bps"] != 1e6 || c.Contacts.WebhookURL.Env != "ACME_HOOK" {
		t.Fatalf("customer acme: %+v", c)
	}
}

func TestValidationNamesTheKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"customers: [{id: a, prefixes: [10.0.0.1/24]}]", "customers[0].prefixes[0]: 10.0.0.1/24 has host bits set"},
		{"customers: [{id: a, prefixes: [nonsense]}]", "customers[0].prefixes[0]"},
		{"customers: [{prefixes: [10.0.0.0/24]}]", "customers[0].id: required"},
		{"customers: [{id: a, prefixes: [10.0.0.0/24]}, {id: a, prefixes: [10.0.1.0/24]}]", "customers[1].id: duplicate"},
		{"customers: [{id: a, prefixes: [10.0.0.0/24]}, {id: b, prefixes: [10.0.0.0/24]}]", "already belongs to customer \"a\""},
		{"customers: [{id: a}]", "customers[0].prefixes: at least one"},
		{"customers: [{id: a, prefixes: [10.0.0.0/24], notify: {min_severity: loud}}]", "customers[0].notify.min_severity"},
		{"customers: [{id: a, prefixes: [10.0.0.0/24], floors: {bps: 10}, ceilings: {bps: 5}}]", "customers[0].ceilings.bps"},
		{"default_granularity: {ipv4: 40}", "default_granularity.ipv4"},
		{"costumers: []", "field costumers not found"},
	} {
		_, err := load(t, tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.in, err, tc.want)
		}
	}
}
