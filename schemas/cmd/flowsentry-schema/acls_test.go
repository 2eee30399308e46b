package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// TestACLPolicy: each service gets exactly the rights it needs and no
// other (no create, delete, alter; nothing on other services' topics).
func TestACLPolicy(t *testing.T) {
	got := map[string][]string{}
	for _, e := range entries(policy(defaultPrincipals())) {
		kind := map[bool]string{true: "group", false: "topic"}[e.ResourceType == group]
		got[e.Principal] = append(got[e.Principal], kind+":"+e.ResourceName+":"+opNames[e.Operation])
		if e.Host != "*" || e.PermissionType.String() == "" {
			t.Errorf("entry %+v", e)
		}
	}
	for _, tc := range []struct {
		user string
		want []string
	}{
		{"collector", []string{"topic:flows:Write", "topic:flows:Describe"}},
		{"detector", []string{"topic:flows:Read", "topic:flows:Describe", "group:flowsentry-detector:Read",
			"topic:anomalies:Write", "topic:anomalies:Describe", "topic:baselines:Write", "topic:baselines:Describe",
			"topic:detector-state:Read", "topic:detector-state:Write", "topic:detector-state:Describe"}},
		{"alerter", []string{"topic:anomalies:Read", "topic:anomalies:Describe", "group:flowsentry-alerter:Read"}},
		{"sink", []string{"topic:flows:Read", "topic:flows:Describe", "topic:anomalies:Read", "topic:anomalies:Describe",
			"topic:baselines:Read", "topic:baselines:Describe", "group:flowsentry-sink:Read",
			"topic:flows-deadletter:Write", "topic:flows-deadletter:Describe"}},
	} {
		t.Run(tc.user, func(t *testing.T) {
			g := got["User:"+tc.user]
			slices.Sort(g)
			slices.Sort(tc.want)
			if !slices.Equal(g, tc.want) {
				t.Errorf("User:%s may\n %v\nwant\n %v", tc.user, g, tc.want)
			}
		})
	}
	if len(got) != 4 {
		t.Errorf("principals %v, want the four services only", got)
	}
}

func TestACLsCommand(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var out bytes.Buffer
	err := aclsCommand(context.Background(), []string{"-brokers", "k1:9093", "-sink-user", "sink-eu", "-sink-group", "sink-eu"}, &out, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kafka-acls.sh --bootstrap-server k1:9093 --command-config admin.properties --add --allow-principal User:collector --operation Write --operation Describe --topic flows\n",
		"--allow-principal User:sink-eu --operation Read --group sink-eu\n",
		"--allow-principal User:sink-eu --operation Write --operation Describe --topic flows-deadletter\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "kafka-acls.sh "); n != len(policy(defaultPrincipals())) {
		t.Errorf("%d commands, want one per grant", n)
	}
	for _, args := range [][]string{{"-sink-user", ""}, {"-alerter-group", "*"}, {"-detector-user", "a b"}} {
		if err := aclsCommand(context.Background(), args, io.Discard, log); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: err = %v, want one naming %s", args, err, args[0])
		}
	}
}
