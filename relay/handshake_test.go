package relay

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// waitMetric polls a relay metric until it equals want, failing at ctx's
// deadline.
func waitMetric(t *testing.T, ctx context.Context, s *Server, name string, want uint64) {
	t.Helper()
	for {
		got := readMetrics(t, s)[name]
		if got == want {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s = %d, want %d", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialTCP opens a plain TCP connection that sends nothing.
func dialTCP(t *testing.T, ctx context.Context, addr string) net.Conn {
	t.Helper()
	_, hostport, err := wire.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		t.Fatalf("tcp dial: %v", err)
	}
	return c
}

// expectClosedByRelay reads from c and fails unless the relay closed it
// before ctx's deadline, having sent nothing.
func expectClosedByRelay(t *testing.T, ctx context.Context, c net.Conn) {
	t.Helper()
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	}
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 {
		t.Fatalf("relay sent %d bytes to a connection it should have closed", n)
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection not closed by the relay: %v", err)
	}
}

// TestHandshakeLimit: connections that never send a ClientHello hold the
// handshake slots; one more TCP connection is closed at once without a
// handshake (the handshake timeout is far beyond the test's deadline, so
// only the bound can close it), and counted; when a slot frees, a normal
// client is served; a client connected before keeps being served
// throughout.
func TestHandshakeLimit(t *testing.T) {
	defer leakcheck.Check(t)()
	const slots = 2
	ctx := testCtx(t)
	r := startRelay(t, Limits{MaxHandshakes: slots, HandshakeTimeout: time.Hour})
	by := newBystander(t, ctx, r.addr)
	defer by.c.Close()
	defer r.stop()
	by.served(t, ctx)
	waitMetric(t, ctx, r.srv, "parley_relay_handshakes_in_progress", 0)

	var stalled []net.Conn
	for range slots {
		c := dialTCP(t, ctx, r.addr)
		defer c.Close()
		stalled = append(stalled, c)
	}
	waitMetric(t, ctx, r.srv, "parley_relay_handshakes_in_progress", slots)

	// A raw TCP connection over the bound is closed with nothing sent.
	over := dialTCP(t, ctx, r.addr)
	defer over.Close()
	expectClosedByRelay(t, ctx, over)
	if got := readMetrics(t, r.srv)["parley_relay_handshakes_refused_total"]; got != 1 {
		t.Fatalf("handshakes refused = %d, want 1", got)
	}
	// A real client over the bound does not complete a handshake.
	_, hostport, _ := wire.ParseAddress(r.addr)
	if rc, err := tryDialRaw(ctx, hostport); err == nil {
		rc.close()
		t.Fatal("a client completed a handshake with every slot held")
	}
	if got := readMetrics(t, r.srv)["parley_relay_handshakes_refused_total"]; got != 2 {
		t.Fatalf("handshakes refused = %d, want 2", got)
	}
	by.served(t, ctx)

	// One stalled client goes away: its slot frees and a client is served.
	stalled[0].Close()
	waitMetric(t, ctx, r.srv, "parley_relay_handshakes_in_progress", slots-1)
	rc := dialRaw(t, ctx, r.addr)
	rc.create(ctx, 1)
	rc.close()
	by.served(t, ctx)
	if got := readMetrics(t, r.srv)["parley_relay_handshakes_refused_total"]; got != 2 {
		t.Fatalf("handshakes refused = %d after a slot freed, want 2", got)
	}
}

// TestHandshakeTimeoutFreesSlot: a connection that never sends a
// ClientHello is closed by the relay after HandshakeTimeout (the test's
// deadline is far longer), which frees its slot for a normal client.
func TestHandshakeTimeoutFreesSlot(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{MaxHandshakes: 1, HandshakeTimeout: 300 * time.Millisecond})
	by := newBystander(t, ctx, r.addr)
	defer by.c.Close()
	defer r.stop()

	stalled := dialTCP(t, ctx, r.addr)
	defer stalled.Close()
	expectClosedByRelay(t, ctx, stalled)
	if got := readMetrics(t, r.srv)["parley_relay_handshakes_refused_total"]; got != 0 {
		t.Fatalf("handshakes refused = %d, want 0 (the stalled connection had a slot)", got)
	}
	waitMetric(t, ctx, r.srv, "parley_relay_handshakes_in_progress", 0)
	rc := dialRaw(t, ctx, r.addr)
	rc.create(ctx, 1)
	rc.close()
	by.served(t, ctx)
}

// TestServeStopsDuringHandshakes: stopping the relay interrupts the
// handshakes in progress (whose timeout is far away) and leaves no
// goroutine behind.
func TestServeStopsDuringHandshakes(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{MaxHandshakes: 4, HandshakeTimeout: time.Hour})
	for range 3 {
		c := dialTCP(t, ctx, r.addr)
		defer c.Close()
	}
	waitMetric(t, ctx, r.srv, "parley_relay_handshakes_in_progress", 3)
	r.stop()
}

func TestHandshakeLimitDefaults(t *testing.T) {
	l := Limits{}.withDefaults()
	if l.MaxHandshakes != 64 || l.HandshakeTimeout != 10*time.Second {
		t.Fatalf("defaults: MaxHandshakes %d, HandshakeTimeout %v", l.MaxHandshakes, l.HandshakeTimeout)
	}
}
