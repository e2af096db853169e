//go:build !js

package client

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// connect opens TLS 1.3 pinned to the relay's fingerprint and upgrades to
// WebSocket; it returns the connection, the TLS exporter value that
// command authenticators are bound to, and the batcher under the TLS
// connection.
func (c *Client) connect(ctx context.Context) (*websocket.Conn, []byte, batcher, error) {
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
	var (
		dialMu sync.Mutex
		dialed []*batchConn
	)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := c.opts.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		bc := newBatchConn(nc, writeTimeout)
		dialMu.Lock()
		dialed = append(dialed, bc)
		dialMu.Unlock()
		return bc, nil
	}
	tr := &http.Transport{DialContext: dial, TLSClientConfig: tlsConf, TLSHandshakeTimeout: handshakeTimeout}
	defer tr.CloseIdleConnections()
	ws, resp, err := websocket.Dial(ctx, "wss://"+c.hostport+wire.WebSocketPath, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: tr},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		ws.CloseNow()
		return nil, nil, nil, errors.New("not TLS 1.3")
	}
	exporter, err := resp.TLS.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterLength)
	if err != nil {
		ws.CloseNow()
		return nil, nil, nil, err
	}
	dialMu.Lock()
	n := len(dialed)
	var b *batchConn
	if n == 1 {
		b = dialed[0]
	}
	dialMu.Unlock()
	if b == nil {
		ws.CloseNow()
		return nil, nil, nil, fmt.Errorf("%d connections dialed for one upgrade", n)
	}
	return ws, exporter, b, nil
}
