package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// TLSConfig is the tls section of a broker connection (bus.amqp.tls,
// bus.redisstream.tls): whether to use TLS, which authorities to trust and
// which certificate to present.
type TLSConfig struct {
	// Enabled turns TLS on for Redis. RabbitMQ needs no switch: an
	// amqps:// URL connects with TLS.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of the certificate authorities the broker's
	// certificate must chain to; empty: the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for a
	// broker that asks for one (mutual TLS); both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the broker's certificate must carry; empty:
	// the host connected to.
	ServerName string `yaml:"server_name"`
}

// configured reports whether any key other than Enabled is set.
func (c TLSConfig) configured() bool {
	return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != ""
}

// clientConfig reads the files into a TLS client configuration; errors name
// the key relative to the section (ca_file: ...).
func (c TLSConfig) clientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: no PEM certificate in %s", c.CAFile)
		}
	}
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		return nil, errors.New("key_file: required with cert_file")
	case c.CertFile == "" && c.KeyFile != "":
		return nil, errors.New("cert_file: required with key_file")
	case c.CertFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// amqpTLS is the TLS configuration for the amqp adapter: nil when the URL
// is not amqps:// or the section is empty (amqps:// alone trusts the
// system's authorities, or what the URL's cacertfile, certfile and keyfile
// name).
func amqpTLS(cfg AMQPConfig) (*tls.Config, error) {
	host, ok := amqpsHost(cfg.URL)
	if !ok || !cfg.TLS.configured() {
		return nil, nil //nolint:nilnil // no TLS configuration of ours: the URL decides
	}
	c, err := cfg.TLS.clientConfig()
	if err != nil {
		return nil, err
	}
	if c.ServerName == "" {
		// Set here, as amqp091 would set it on this shared configuration
		// at every (re)connection of the publisher's and the subscribers'
		// connections, concurrently.
		c.ServerName = host
	}
	return c, nil
}

// amqpsHost is the host of an amqps:// URL; false for any other URL. A
// malformed URL is left to the connection, which reports it redacted
// (url.Parse's error repeats the URL, password included).
func amqpsHost(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "amqps" {
		return "", false
	}
	return u.Hostname(), true
}

// validateAMQPTLS reports a tls section that does not fit the URL.
func validateAMQPTLS(cfg AMQPConfig, bad func(key, format string, args ...any)) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return // the connection reports it, redacted
	}
	if u.Scheme != "amqps" {
		if cfg.TLS.Enabled || cfg.TLS.configured() {
			bad("amqp.tls", "set, but bus.amqp.url is %s://: use an amqps:// URL to connect with TLS", u.Scheme)
		}
		return
	}
	if !cfg.TLS.configured() {
		return
	}
	q := u.Query()
	for _, p := range []string{"cacertfile", "certfile", "keyfile", "server_name_indication"} {
		if q.Has(p) {
			bad("amqp.tls", "set, and bus.amqp.url has %s too: configure TLS in one place", p)
			return
		}
	}
	if _, err := cfg.TLS.clientConfig(); err != nil {
		key, reason, _ := strings.Cut(err.Error(), ": ")
		bad("amqp.tls."+key, "%s", reason)
	}
}

// validateRedisTLS reports a tls section that is set but not enabled, or
// whose files do not load.
func validateRedisTLS(cfg RedisConfig, bad func(key, format string, args ...any)) {
	if !cfg.TLS.Enabled {
		if cfg.TLS.configured() {
			bad("redisstream.tls.enabled", "false, but bus.redisstream.tls names files or a server name: set enabled: true to connect with TLS")
		}
		return
	}
	if _, err := cfg.TLS.clientConfig(); err != nil {
		key, reason, _ := strings.Cut(err.Error(), ": ")
		bad("redisstream.tls."+key, "%s", reason)
	}
}
