package faulttest

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestRSSAndAlive(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 || rss > 64<<30 {
		t.Fatalf("RSS of the test process: %d, %v", rss, err)
	}
	if !alive(os.Getpid()) {
		t.Error("the test process is not alive")
	}
	if _, err := RSS(1 << 30); err == nil {
		t.Error("RSS of a pid that cannot exist")
	}
}

func TestSecondsFromEnv(t *testing.T) {
	t.Setenv("FAULTTEST_X", "")
	if d, err := Seconds("FAULTTEST_X", 30); err != nil || d != 30*time.Second {
		t.Errorf("default: %v %v", d, err)
	}
	t.Setenv("FAULTTEST_X", "5")
	if d, err := Seconds("FAULTTEST_X", 30); err != nil || d != 5*time.Second {
		t.Errorf("5: %v %v", d, err)
	}
	for _, bad := range []string{"0", "-1", "5s", "x"} {
		t.Setenv("FAULTTEST_X", bad)
		if _, err := Seconds("FAULTTEST_X", 30); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBrokerPIDRefusesOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	pidFile := dir + "/kafka.pid"
	// Our own pid is alive but not a broker: it must never be signalled.
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := brokerPID(pidFile, dir+"/server.properties"); err == nil {
		t.Error("the test process was taken for the broker")
	}
	if _, err := brokerPID(dir+"/missing.pid", dir+"/server.properties"); err == nil {
		t.Error("a missing pid file gave a pid")
	}
}
