module github.com/packetworks/flowsentry/detector

go 1.26.0
