module github.com/packetworks/flowsentry/alerter

go 1.26.0
