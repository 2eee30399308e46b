// Command report collects the results of `make bench` (benchmarks/run.sh)
// and writes benchmarks/results: latest.json, report.md and PNG plots.
//
//	report machine -o machine.json          describe the machine when the run starts
//	report build -in DIR -out DIR [-quick]  read run.sh's step logs, write the results
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: report machine|build [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "machine":
		out := fs.String("o", "", "write the machine description (JSON) to this file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" {
			return fmt.Errorf("machine: -o is required")
		}
		return writeJSON(*out, DescribeMachine(time.Now()))
	case "build":
		in := fs.String("in", "", "run directory written by run.sh (machine.json, steps.tsv, step logs)")
		out := fs.String("out", "", "results directory (latest.json, report.md, *.png)")
		quick := fs.Bool("quick", false, "the run was QUICK=1: flag every figure as not for comparison")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *in == "" || *out == "" {
			return fmt.Errorf("build: -in and -out are required")
		}
		return build(*in, *out, *quick)
	}
	return fmt.Errorf("unknown command %q (want machine or build)", args[0])
}

func build(in, out string, quick bool) error {
	res, err := Build(in, quick)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// Plots of an earlier run must not sit beside this run's report.
	old, _ := filepath.Glob(filepath.Join(out, "*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	plots, err := WritePlots(out, res)
	if err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(out, "latest.json"), res); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, res, plots); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "report.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	for _, f := range res.Figures {
		if f.Target != "" || f.Group == "e2e" {
			fmt.Printf("%-60s %-28s target %-24s %s\n", f.Name, value(f), f.Target, metCell(f))
		}
	}
	fmt.Printf("wrote %s\n", filepath.Join(out, "report.md"))
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
