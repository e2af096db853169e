package relay

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// TestSocketFloodBounded: TCP connections that never start a TLS
// handshake hold sockets only up to MaxConnections+MaxPending; one more is
// closed at once by the relay, before TLS, while a client already served
// goes on being served; once the flood's sockets close, new clients are
// served again.
func TestSocketFloodBounded(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, _ := badSetup(t, Limits{MaxConnections: 3, MaxPending: 1})
	defer teardown(r, by, rc)
	_, hostport, _ := wire.ParseAddress(r.addr)
	// by and rc hold two of the four sockets; the flood takes the rest.
	var d net.Dialer
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 2 {
		c, err := d.DialContext(ctx, "tcp", hostport)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	for r.srv.sockets.Load() != 4 {
		if ctx.Err() != nil {
			t.Fatalf("%d sockets open, want 4", r.srv.sockets.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// One more socket: the relay closes it without reading a byte.
	over, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	deadline, _ := ctx.Deadline()
	over.SetReadDeadline(deadline)
	if n, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("socket over the limit: read %d bytes, %v; want it closed (EOF)", n, err)
	}
	if got := readMetrics(t, r.srv)["parley_relay_connections_refused_total"]; got != 1 {
		t.Errorf("refused_total = %d, want 1", got)
	}
	by.served(t, ctx)
	// The flood ends; a new client is served.
	for _, c := range flood {
		c.Close()
	}
	for r.srv.sockets.Load() != 2 {
		if ctx.Err() != nil {
			t.Fatalf("%d sockets open after the flood closed, want 2", r.srv.sockets.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	late := dialRaw(t, ctx, r.addr)
	defer late.close()
	late.roundTrip(ctx, late.frame(1, nil, &wire.Command{Type: wire.TypePing}, nil, nil), wire.TypePong)
}
