module github.com/packetworks/flowsentry/collector

go 1.26.0
