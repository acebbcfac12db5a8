package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// LoadOrCreateCertificate returns the certificate at certFile/keyFile. When
// both are empty it uses (and, if missing or near expiry, creates) a
// self-signed ECDSA P-256 certificate for localhost under dir/tls, so a
// clinic can try Haven with no setup while traffic is still encrypted. The
// bool reports whether a certificate was created.
func LoadOrCreateCertificate(dir, certFile, keyFile string) (tls.Certificate, bool, error) {
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return tls.Certificate{}, false, fmt.Errorf("--tls-cert and --tls-key must be given together")
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, false, fmt.Errorf("--tls-cert/--tls-key: %v", err)
		}
		return c, false, nil
	}
	tlsDir := filepath.Join(dir, "tls")
	certFile, keyFile = filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && c.Leaf != nil && time.Until(c.Leaf.NotAfter) > 30*24*time.Hour {
		return c, false, nil
	}
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return tls.Certificate{}, false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Haven (self-signed)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, false, err
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	return c, true, err
}

// Fingerprint returns the SHA-256 fingerprint of c's leaf, in the
// colon-separated form browsers show, so a user can check a self-signed
// certificate out of band.
func Fingerprint(c tls.Certificate) string {
	if len(c.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.Certificate[0])
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// TLSConfig returns Haven's server TLS configuration: TLS 1.3 only, so every
// connection has forward secrecy and AEAD ciphers, and Go's default key
// exchange preferences, which put the hybrid post-quantum X25519MLKEM768
// first: records must stay secret for decades, so traffic recorded today must
// not be readable by a future quantum computer.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// Session tickets let a returning client resume without a full handshake.
// A ticket is sealed under a server key, and whoever holds that key can
// open the ticket, and with it the keys of a resumed connection someone
// recorded. Go keeps its own ticket keys for 7 days; Haven makes its own,
// a new one every SessionTicketRotation, and keeps the last
// SessionTicketKeys of them, so a ticket (and the key that opens it)
// lives at most SessionTicketLifetime.
const (
	SessionTicketRotation = time.Hour
	SessionTicketKeys     = 3
	SessionTicketLifetime = SessionTicketKeys * SessionTicketRotation
)

// ticketKeys rotates one tls.Config's session ticket keys: the newest
// seals new tickets, the older ones still open theirs until they drop off.
type ticketKeys struct {
	mu   sync.Mutex
	cfg  *tls.Config
	keys [][32]byte
}

// rotate makes a new key and forgets the oldest beyond SessionTicketKeys.
func (k *ticketKeys) rotate() {
	var key [32]byte
	rand.Read(key[:])
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append([][32]byte{key}, k.keys...)
	if len(k.keys) > SessionTicketKeys {
		k.keys = k.keys[:SessionTicketKeys]
	}
	k.cfg.SetSessionTicketKeys(k.keys) // this also turns Go's own rotation off
}

// rotateTicketKeys gives cfg its first key now and a new one every
// SessionTicketRotation until ctx ends.
func rotateTicketKeys(ctx context.Context, cfg *tls.Config) *ticketKeys {
	k := &ticketKeys{cfg: cfg}
	k.rotate()
	go func() {
		t := time.NewTicker(SessionTicketRotation)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				k.rotate()
			}
		}
	}()
	return k
}
