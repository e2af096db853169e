package wire

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
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
	// The same rule for host:port: a relay has one address, so that a
	// client that counts its relays by address counts each once.
	if c, err := CanonicalHostPort(hostport); err != nil {
		return fp, "", fmt.Errorf("relay address %q: %w", addr, err)
	} else if c != hostport {
		return fp, "", fmt.Errorf("relay address %q: host:port is not in canonical form (%s)", addr, c)
	}
	copy(fp[:], raw)
	return fp, hostport, nil
}

// maxHostLength bounds a DNS name (RFC 1035 §2.3.4: 255 octets on the
// wire, 253 characters as text).
const maxHostLength = 253

// CanonicalHostPort returns the one spelling of host:port that relay
// addresses use: a host that is not empty, an IP literal as net/netip
// prints it or a DNS name in lower case (letters, digits, '-', '.', '_'),
// and a port from 1 to 65535 in decimal without leading zeros.
func CanonicalHostPort(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	} else {
		host = strings.ToLower(host)
		if err := checkHostName(host); err != nil {
			return "", err
		}
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}

func checkHostName(host string) error {
	if host == "" || len(host) > maxHostLength {
		return errors.New("host is empty or longer than 253 characters")
	}
	for _, r := range host {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-', r == '.', r == '_':
		default:
			return fmt.Errorf("host %q: %q is not a letter, digit, '-', '.' or '_'", host, r)
		}
	}
	return nil
}
