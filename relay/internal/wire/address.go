package wire

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
)

// Scheme is the relay address scheme: parley://<fingerprint>@host:port.
const Scheme = "parley://"

// FingerprintSize is the size of a relay key fingerprint: SHA-256 of the
// relay's SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
const FingerprintSize = sha256.Size

// WebSocketPath is the HTTP path of the relay's WebSocket endpoint.
const WebSocketPath = "/parley/v1"

// Fingerprint returns SHA-256 of a DER-encoded SubjectPublicKeyInfo.
func Fingerprint(spki []byte) [FingerprintSize]byte { return sha256.Sum256(spki) }

// FormatAddress returns parley://<base64url fingerprint>@hostport.
func FormatAddress(fp [FingerprintSize]byte, hostport string) string {
	return Scheme + base64.RawURLEncoding.EncodeToString(fp[:]) + "@" + hostport
}

// ParseAddress splits a relay address into the pinned fingerprint and
// host:port.
func ParseAddress(addr string) (fp [FingerprintSize]byte, hostport string, err error) {
	rest, ok := strings.CutPrefix(addr, Scheme)
	if !ok {
		return fp, "", fmt.Errorf("relay address %q: does not start with %s", addr, Scheme)
	}
	enc, hostport, ok := strings.Cut(rest, "@")
	if !ok {
		return fp, "", fmt.Errorf("relay address %q: no fingerprint before '@'", addr)
	}
	// encoding/base64 skips '\r' and '\n' even in strict mode, so a
	// decoded fingerprint is accepted only if it re-encodes to exactly
	// what was written: one address, one spelling.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(raw) != FingerprintSize || base64.RawURLEncoding.EncodeToString(raw) != enc {
		return fp, "", fmt.Errorf("relay address %q: fingerprint is not %d bytes of unpadded base64url", addr, FingerprintSize)
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return fp, "", fmt.Errorf("relay address %q: %w", addr, err)
	}
	copy(fp[:], raw)
	return fp, hostport, nil
}
