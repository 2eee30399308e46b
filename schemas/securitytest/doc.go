// Package securitytest holds the security integration tests (build tag
// "integration"): a second Kafka broker with a SASL_SSL listener and a second
// ClickHouse server with TLS on the native protocol, both started for the test
// by deploy/scripts/secure-services.sh with certificates generated into a
// temporary directory, and the service binaries run through them with their
// secrets in the environment. The package has no non-test code.
package securitytest
