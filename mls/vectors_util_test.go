package mls

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// defaultVectorDir is the official MLS test vectors, relative to this
// package's directory (/work/main/mls -> /work/shared/vectors/mls).
const defaultVectorDir = "../../shared/vectors/mls"

func vectorDir() string {
	if d := os.Getenv("PARLEY_MLS_VECTORS"); d != "" {
		return d
	}
	return defaultVectorDir
}

// hexBytes is a JSON hex string.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

func loadVectors(t *testing.T, name string, out any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir(), name))
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
}

// suiteOrSkip returns the suite, or skips the subtest with the reason for the
// X448/Ed448 suites the standard library lacks.
func suiteOrSkip(t *testing.T, id uint16) *ciphersuite.Suite {
	t.Helper()
	s, err := ciphersuite.New(ciphersuite.ID(id))
	if errors.Is(err, ciphersuite.ErrUnsupportedSuite) {
		t.Skipf("suite 0x%04x: %v (X448/Ed448 are not in Go's standard library)", id, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signaturePriv decodes a vector's signature private key. The vectors encode
// ECDSA scalars as minimal big-endian integers, so a P-521 key may be one
// byte short of the fixed-length form; it is left-padded with zeros.
func signaturePriv(t *testing.T, s *ciphersuite.Suite, b []byte) *ciphersuite.SignaturePrivateKey {
	t.Helper()
	k, err := s.NewSignaturePrivateKey(padScalar(s, b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustHPKEPub(t *testing.T, s *ciphersuite.Suite, b []byte) *ciphersuite.HPKEPublicKey {
	t.Helper()
	k, err := s.NewHPKEPublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// padScalar left-pads a NIST-curve private scalar that a vector encodes
// without its leading zero bytes to the fixed length SerializePrivateKey
// (RFC 9180 §7.1.2) and the ECDSA encoding use.
func padScalar(s *ciphersuite.Suite, b []byte) []byte {
	sizes := map[ciphersuite.ID]int{0x0002: 32, 0x0005: 66, 0x0007: 48}
	if n, ok := sizes[s.ID()]; ok && len(b) < n {
		return append(make([]byte, n-len(b)), b...)
	}
	return b
}

func hpkePriv(t *testing.T, s *ciphersuite.Suite, b []byte) *ciphersuite.HPKEPrivateKey {
	t.Helper()
	k, err := s.NewHPKEPrivateKey(padScalar(s, b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
