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
	"time"

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
		bc := &batchConn{Conn: nc, timeout: writeTimeout}
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

// batchMax is the most a batchConn gathers before writing: four frames
// of the default 16 KiB block size.
const batchMax = 64 << 10

// batchConn is the TCP connection under TLS. The WebSocket library
// flushes a masked frame in 4 KiB pieces, each its own TLS record and
// system call; while a session holds the batchConn, the records it writes
// are gathered and leave in one write at release. A session keeps it held
// from one frame to the next while other frames are waiting to be written
// (session.write), so frames of concurrent commands share a write too. The
// bytes on the wire are the same.
type batchConn struct {
	net.Conn
	timeout time.Duration // bounds each write system call; 0: none

	mu   sync.Mutex // guards the fields below; held across a write
	held bool
	buf  []byte
	err  error // the first failed write; every later write fails
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if !b.held {
		n, err := b.writeLocked(p)
		return n, err
	}
	if len(b.buf) > 0 && len(b.buf)+len(p) > batchMax {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// writeLocked writes p in one system call (or as few as the kernel
// takes), under a deadline.
func (b *batchConn) writeLocked(p []byte) (int, error) {
	if b.timeout > 0 {
		b.Conn.SetWriteDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.Conn.Write(p)
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *batchConn) flushLocked() error {
	_, err := b.writeLocked(b.buf)
	b.buf = b.buf[:0]
	return err
}

func (b *batchConn) hold() {
	b.mu.Lock()
	b.held = true
	b.mu.Unlock()
}

// release writes what was gathered and stops gathering.
func (b *batchConn) release() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held = false
	if b.err == nil && len(b.buf) > 0 {
		b.flushLocked()
	}
	if cap(b.buf) > 2*batchMax {
		b.buf = nil
	}
	return b.err
}
