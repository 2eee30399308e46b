// Command demo runs Flowsentry end to end on generated traffic (make demo).
// deploy/scripts/demo.sh starts the services with deploy/demo/ configs and
// calls it:
//
//	demo topics -create|-delete -prefix demo-RUN-   the run's Kafka topics
//	demo receivers [-http addr] [-smtp addr]      local Slack/PagerDuty/SMTP stand-ins that print each message
//	demo run [flags]                              replay history, drive live traffic and attacks, print what happens, check it
//
// The scenario (customers, rates, attacks) is deploy/demo/scenario.yaml,
// described by package benchmarks/scenario; deploy/demo/README.md explains
// the run.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runDemo(os.Args[2:])
	case "receivers":
		err = runReceivers(os.Args[2:])
	case "topics":
		err = runTopics(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: demo run [flags] | receivers [-http addr -smtp addr] | topics -create|-delete -prefix demo-RUN-")
	os.Exit(2)
}
