package relay

import (
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// TestWriteTimeoutClosesStalledClient: a client that sends commands and
// never reads their answers stalls the relay's writes once the socket
// buffers fill; after WriteTimeout the relay closes that connection (and
// only that one), well before its idle timeout would.
func TestWriteTimeoutClosesStalledClient(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{WriteTimeout: 300 * time.Millisecond, CommandsPerSecond: 1 << 20})
	defer teardown(r, by, rc)
	open := func() uint64 { return readMetrics(t, r.srv)["parley_relay_connections_open"] }
	// One full block waiting, so that every get is answered with a
	// block-sized frame.
	rc.roundTrip(ctx, rc.sendBlock(2, q, make([]byte, 1000)), wire.TypeOK)
	baseline := open()

	stalled := dialRaw(t, ctx, r.addr)
	defer stalled.close()
	// Gets authenticated with the recipient key, never read: about 25 MB
	// of answers, more than loopback socket buffers hold.
	// The relay may close the connection before the last is written.
	for i := range 1500 {
		b, err := stalled.frame(uint64(1+i), q.rid, &wire.Command{Type: wire.TypeGet}, q.auth, q.relayRcp).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if stalled.ws.Write(ctx, websocket.MessageBinary, b) != nil {
			break
		}
	}
	start := time.Now()
	for open() > baseline {
		if ctx.Err() != nil {
			t.Fatalf("stalled connection still open after %v (idle timeout %v)", time.Since(start), r.srv.Limits().IdleTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	by.served(t, ctx)
}
