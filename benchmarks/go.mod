module github.com/packetworks/flowsentry/benchmarks

go 1.26.0
