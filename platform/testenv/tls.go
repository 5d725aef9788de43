package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are PEM files of a throwaway certificate authority, a server
// certificate it signed for localhost, 127.0.0.1 and ::1, and a client
// certificate it signed, for tests that start a TLS server of their own.
type TLSFiles struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// NewTLSFiles writes a fresh CA and the certificates it signed into a
// temporary directory of the test.
func NewTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	ca := newCert(t, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "throwaway test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	})
	server := newCert(t, &ca, &x509.Certificate{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	client := newCert(t, &ca, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "test client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return TLSFiles{
		CA:         writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.der),
		ServerCert: writePEM(t, dir, "server.pem", "CERTIFICATE", server.der),
		ServerKey:  writePEM(t, dir, "server-key.pem", "PRIVATE KEY", server.keyDER(t)),
		ClientCert: writePEM(t, dir, "client.pem", "CERTIFICATE", client.der),
		ClientKey:  writePEM(t, dir, "client-key.pem", "PRIVATE KEY", client.keyDER(t)),
	}
}

type issued struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	der  []byte
}

func (c issued) keyDER(t testing.TB) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// newCert issues template, valid for an hour, signed by parent (nil:
// self-signed).
func newCert(t testing.TB, parent *issued, template *x509.Certificate) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	template.SerialNumber = serial
	template.NotBefore, template.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	signer, signerCert := key, template
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signerCert, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issued{key: key, cert: cert, der: der}
}

func writePEM(t testing.TB, dir, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
