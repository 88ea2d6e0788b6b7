package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TrustPool returns the certificate pool that verifies the endpoint and the
// authority: the system roots plus the CA of ca_file (how the emulator, or
// a TLS-inspecting proxy, is trusted). Without ca_file it is nil, which
// crypto/tls reads as the system roots alone. The system roots are kept
// with a ca_file: a configuration trusting the emulator's CA must still
// reach Azure and a proxy.
func (c *Config) TrustPool() (*x509.CertPool, error) { return trustPool(KeyCAFile, c.CAFile) }

// KafkaTrustPool is TrustPool for the Kafka brokers: the system roots plus
// the CA of kafka_ca_file (nil without it).
func (c *Config) KafkaTrustPool() (*x509.CertPool, error) {
	return trustPool(KeyKafkaCAFile, c.KafkaCAFile)
}

// trustPool is the system roots plus the certificates of the PEM file
// named by key, or nil (the system roots alone) when path is empty.
func trustPool(key, path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pemData, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", key, path)
	}
	return pool, nil
}

// TLSConfig is the client TLS configuration of every connection ccfpush
// makes for c: TLS 1.2 or later, trusting TrustPool.
func (c *Config) TLSConfig() (*tls.Config, error) { return tlsConfig(c.TrustPool()) }

// KafkaTLSConfig is TLSConfig for the Kafka brokers, trusting
// KafkaTrustPool.
func (c *Config) KafkaTLSConfig() (*tls.Config, error) { return tlsConfig(c.KafkaTrustPool()) }

func tlsConfig(pool *x509.CertPool, err error) (*tls.Config, error) {
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}
