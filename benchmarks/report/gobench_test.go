package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseGoBench(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []Bench
		wantErr string
	}{
		{
			name: "benchmem line with package",
			in: "goos: linux\npkg: example.com/m/decode\ncpu: AMD EPYC\n" +
				"BenchmarkDecode/netflow9-2         \t  635016\t       494.4 ns/op\t 129.46 MB/s\t      10 B/op\t       0 allocs/op\nPASS\nok  \texample.com/m/decode\t1.3s\n",
			want: []Bench{{Pkg: "example.com/m/decode", Name: "BenchmarkDecode/netflow9", Procs: 2, N: 635016,
				Metrics: []Metric{{494.4, "ns/op"}, {129.46, "MB/s"}, {10, "B/op"}, {0, "allocs/op"}}}},
		},
		{
			name: "custom units, ns/op hidden",
			in:   "BenchmarkSinkEndToEnd/batch=100000-2 \t 1\t 0.1753 clickhouse-cores\t 97370 rows/s\t 0.7880 sink-cores\n",
			want: []Bench{{Name: "BenchmarkSinkEndToEnd/batch=100000", Procs: 2, N: 1,
				Metrics: []Metric{{0.1753, "clickhouse-cores"}, {97370, "rows/s"}, {0.788, "sink-cores"}}}},
		},
		{
			name: "GOMAXPROCS 1 prints no suffix; dashes inside sub-benchmark names stay",
			in:   "BenchmarkX/a-b 10 5 ns/op\nBenchmarkY/tcp-udp-8 10 6 ns/op\n",
			want: []Bench{{Name: "BenchmarkX/a-b", Procs: 1, N: 10, Metrics: []Metric{{5, "ns/op"}}},
				{Name: "BenchmarkY/tcp-udp", Procs: 8, N: 10, Metrics: []Metric{{6, "ns/op"}}}},
		},
		{
			name: "name printed before a log line, numbers after it",
			in: "pkg: p\nBenchmarkSinkEndToEnd/batch=250000-2 \ttime=2026-11-27T06:29:00Z level=INFO msg=\"group joined\"\n" +
				"time=2026-11-27T06:29:01Z level=INFO msg=committed partitions=8\n" +
				"12 loose words that are not a result\n" +
				"       1\t         0.2 clickhouse-cores\t    120000 rows/s\t 0.9 sink-cores\n",
			want: []Bench{{Pkg: "p", Name: "BenchmarkSinkEndToEnd/batch=250000", Procs: 2, N: 1,
				Metrics: []Metric{{0.2, "clickhouse-cores"}, {120000, "rows/s"}, {0.9, "sink-cores"}}}},
		},
		{
			name: "failures and summaries are not results",
			in:   "BenchmarkFold-2   \t--- FAIL: BenchmarkFold-2\n    bench_test.go:40: boom\nFAIL\n--- BENCH: BenchmarkY-2\nBenchmarkZ\n",
		},
		{
			name:    "a result line with a bad value is an error naming the line",
			in:      "pkg: p\nBenchmarkA-2 10 5 ns/op\nBenchmarkB-2 10 abc ns/op\n",
			want:    []Bench{{Pkg: "p", Name: "BenchmarkA", Procs: 2, N: 10, Metrics: []Metric{{5, "ns/op"}}}},
			wantErr: `line 3: BenchmarkB: value "abc" is not a number`,
		},
		{
			name:    "a unit without a value is an error",
			in:      "BenchmarkA-2 10 5 ns/op 7\n",
			wantErr: "line 1: BenchmarkA: want value/unit pairs",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseGoBench(strings.NewReader(c.in))
			if c.wantErr == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestGroupRunsMedian(t *testing.T) {
	in := "pkg: a\nBenchmarkF-2 1 9 ns/op 3 flows/s\nBenchmarkG-2 1 1 ns/op\nBenchmarkF-2 1 7 ns/op 1 flows/s\nBenchmarkF-2 1 8 ns/op\n" +
		"pkg: b\nBenchmarkF-2 1 100 ns/op\n"
	bs, err := ParseGoBench(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	rs := GroupRuns(bs)
	if len(rs) != 3 || rs[0].Name != "BenchmarkF" || rs[0].Pkg != "a" || rs[1].Name != "BenchmarkG" || rs[2].Pkg != "b" {
		t.Fatalf("groups %+v", rs)
	}
	if m, _ := rs[0].Median("ns/op"); m != 8 {
		t.Fatalf("median ns/op %v, want 8", m)
	}
	if m, _ := rs[0].Median("flows/s"); m != 2 { // even count: mean of the middle two
		t.Fatalf("median flows/s %v, want 2", m)
	}
	if _, ok := rs[1].Median("flows/s"); ok {
		t.Fatal("median of a unit no run reported")
	}
}

func TestHuman(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{{2978025, "2.98 M"}, {787837, "788 k"}, {10000, "10 k"}, {1830, "1830"}, {145.4, "145"}, {10.03, "10.03"}, {0, "0"}, {8, "8"}, {0.788, "0.79"}} {
		if got := human(c.v); got != c.want {
			t.Errorf("human(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}
