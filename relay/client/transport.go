//go:build !js

package client

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"net/http"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// connect opens TLS 1.3 pinned to the relay's fingerprint and upgrades to
// WebSocket; it returns the connection and the TLS exporter value that
// command authenticators are bound to.
func (c *Client) connect(ctx context.Context) (*websocket.Conn, []byte, error) {
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"http/1.1"},
		// No certificate authority: the relay is authenticated by the
		// SHA-256 of its key's SPKI, carried in its address, checked in
		// VerifyConnection.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("relay presented no certificate")
			}
			cert := cs.PeerCertificates[0]
			if _, ok := cert.PublicKey.(ed25519.PublicKey); !ok {
				return errors.New("relay key is not Ed25519")
			}
			fp := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
			if subtle.ConstantTimeCompare(fp[:], c.fp[:]) != 1 {
				return errors.New("relay key does not match the fingerprint in its address")
			}
			return nil
		},
	}
	tr := &http.Transport{DialContext: c.opts.DialContext, TLSClientConfig: tlsConf, TLSHandshakeTimeout: handshakeTimeout}
	defer tr.CloseIdleConnections()
	ws, resp, err := websocket.Dial(ctx, "wss://"+c.hostport+wire.WebSocketPath, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: tr},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, nil, err
	}
	if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		ws.CloseNow()
		return nil, nil, errors.New("not TLS 1.3")
	}
	exporter, err := resp.TLS.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterLength)
	if err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	return ws, exporter, nil
}
