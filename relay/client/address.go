package client

import "github.com/parley-messenger/parley/relay/internal/wire"

// CheckAddress reports whether addr is a well-formed relay address,
// parley://<base64url SHA-256 fingerprint>@host:port, as Dial requires. It
// does not contact the relay.
func CheckAddress(addr string) error {
	_, _, err := wire.ParseAddress(addr)
	return err
}
