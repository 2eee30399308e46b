package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the figures were measured. It is captured when
// the run starts (the load average then says how busy the shared machine
// was); LoadAverageEnd is filled in from a file written when it ends.
type Machine struct {
	CPUModel         string     `json:"cpu_model"`
	Cores            int        `json:"cores"`
	MemoryBytes      uint64     `json:"memory_bytes"`
	GoVersion        string     `json:"go_version"`
	Kernel           string     `json:"kernel"`
	OS               string     `json:"os"`
	Date             string     `json:"date"` // RFC 3339, UTC, when the run started
	LoadAverageStart [3]float64 `json:"load_average_start"`
	LoadAverageEnd   [3]float64 `json:"load_average_end"`
}

// DescribeMachine reads /proc and /etc on this Linux machine. Missing
// pieces stay empty rather than failing the run: they are descriptive.
func DescribeMachine(now time.Time) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Date: now.UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(string(b), "model name")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		kb := strings.TrimSuffix(procField(string(b), "MemTotal"), " kB")
		if v, err := strconv.ParseUint(strings.TrimSpace(kb), 10, 64); err == nil {
			m.MemoryBytes = v << 10
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		m.OS = strings.Trim(procFieldSep(string(b), "PRETTY_NAME", "="), `"`)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAverageStart, _ = ParseLoadAvg(string(b))
	}
	return m
}

// ParseLoadAvg reads the first three fields of /proc/loadavg.
func ParseLoadAvg(s string) ([3]float64, error) {
	var l [3]float64
	f := strings.Fields(s)
	if len(f) < 3 {
		return l, fmt.Errorf("loadavg: %q has fewer than 3 fields", s)
	}
	for i := range l {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return l, fmt.Errorf("loadavg: field %d: %w", i+1, err)
		}
		l[i] = v
	}
	return l, nil
}

func procField(s, key string) string { return procFieldSep(s, key, ":") }

func procFieldSep(s, key, sep string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
