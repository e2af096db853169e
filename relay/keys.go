package relay

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// queueKeyInfo and masterInfo label the HKDF derivations of the relay's
// per-queue X25519 keys (docs/PROTOCOL.md "Relay protocol: keys").
const (
	masterInfo   = "parley relay v1 queue key master"
	queueKeyInfo = "parley relay v1 queue key"
)

// Roles of a per-queue relay key: the recipient side (keyed by the
// recipient ID) and the sender side (keyed by the sender ID). Two
// unrelated keys, so that the two sides of a queue share nothing a
// passive observer of both could match.
const (
	roleRecipient byte = 1
	roleSender    byte = 2
)

// Fingerprint returns the fingerprint carried in the relay's address:
// base64url (unpadded) of SHA-256 of the relay key's SubjectPublicKeyInfo.
func Fingerprint(pub ed25519.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("relay: fingerprint: %w", err)
	}
	fp := wire.Fingerprint(spki)
	return base64.RawURLEncoding.EncodeToString(fp[:]), nil
}

// Address returns the relay address parley://<fingerprint>@hostport for
// the relay whose key is pub, with hostport in its canonical form (a DNS
// name in lower case, an IP literal as net/netip prints it, a decimal
// port), the only form clients accept.
func Address(pub ed25519.PublicKey, hostport string) (string, error) {
	hp, err := wire.CanonicalHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("relay: address: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("relay: address: %w", err)
	}
	return wire.FormatAddress(wire.Fingerprint(spki), hp), nil
}

// LoadOrCreateKey reads the relay's Ed25519 key from path (PKCS #8, PEM),
// creating it with mode 0600 if the file does not exist. The key is the
// relay's identity: its address stays the same as long as this file does.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("relay: generating key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("relay: encoding key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("relay: creating key directory: %w", err)
		}
		tmp := path + ".tmp"
		if err := writeSynced(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, fmt.Errorf("relay: writing key: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("relay: writing key: %w", err)
		}
		return priv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("relay: reading key: %w", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("relay: key file %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("relay: key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("relay: key file %s: not an Ed25519 key", path)
	}
	return priv, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// certificate returns a self-signed TLS certificate for key. Clients do
// not check it against any authority: they pin the SPKI fingerprint from
// the relay address (docs/PROTOCOL.md "Relay protocol: transport").
func certificate(key ed25519.PrivateKey) (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "parley relay"},
		NotBefore:    time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// queueKeys derives the relay's per-queue X25519 keys from a master secret
// so that the store keeps no relay secret per queue:
//
//	master = HKDF-SHA256(IKM = Ed25519 seed, salt = "", info = masterInfo)
//	key    = HKDF-SHA256(IKM = master, salt = "", info = queueKeyInfo || role || queue_id)
//
// HKDF (RFC 5869) with distinct info strings gives independent keys.
type queueKeys struct {
	master [32]byte
}

func newQueueKeys(key ed25519.PrivateKey) (*queueKeys, error) {
	m, err := hkdf.Key(sha256.New, key.Seed(), nil, masterInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("relay: queue key master: %w", err)
	}
	qk := &queueKeys{}
	copy(qk.master[:], m)
	return qk, nil
}

func (qk *queueKeys) private(role byte, id store.ID) (*ecdh.PrivateKey, error) {
	info := make([]byte, 0, len(queueKeyInfo)+1+store.IDSize)
	info = append(info, queueKeyInfo...)
	info = append(info, role)
	info = append(info, id[:]...)
	k, err := hkdf.Key(sha256.New, qk.master[:], nil, string(info), 32)
	if err != nil {
		return nil, fmt.Errorf("relay: queue key: %w", err)
	}
	return ecdh.X25519().NewPrivateKey(k)
}
