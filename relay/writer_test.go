package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// serveOneConn serves one WebSocket connection with conn.run on a
// loopback HTTP server and returns the relay-side conn and the client's
// WebSocket. The returned stop ends the connection and waits for run.
func serveOneConn(t *testing.T, ctx context.Context, limits Limits) (*conn, *websocket.Conn, func()) {
	t.Helper()
	st := memstore.New(memstore.Options{})
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Config{Key: key, Store: st, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, cancel := context.WithCancel(ctx)
	conns := make(chan *conn, 1)
	var wg sync.WaitGroup
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		c := newConn(s, ws, nil)
		wg.Add(1)
		defer wg.Done()
		// run sets c.ctx; hand c over once it is serving.
		go func() {
			for {
				c.outMu.Lock()
				live := c.live
				c.outMu.Unlock()
				if live {
					conns <- c
					return
				}
				select {
				case <-srvCtx.Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
		c.run(srvCtx)
	}))
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		hs.Close()
		cancel()
		st.Close()
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	var c *conn
	select {
	case c = <-conns:
	case <-ctx.Done():
		t.Fatal("connection not served before the deadline")
	}
	stop := func() {
		ws.CloseNow()
		cancel()
		wg.Wait()
		hs.Close()
		st.Close()
	}
	return c, ws, stop
}

// writerRunning reports whether a writer goroutine exists (or is
// starting) for c.
func writerRunning(c *conn) bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.writing
}

// waitWriterGone waits until c's writer has exited, failing at the
// context's deadline.
func waitWriterGone(t *testing.T, ctx context.Context, c *conn) {
	t.Helper()
	for writerRunning(c) {
		select {
		case <-ctx.Done():
			t.Fatal("writer goroutine still running with an empty outbox")
		case <-time.After(time.Millisecond):
		}
	}
}

// TestWriterExitsWhenIdle checks that an idle connection has no writer
// goroutine: after the hello and after a later push are written, the
// writer exits; the push in between starts a new one and is delivered.
func TestWriterExitsWhenIdle(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, ws, stop := serveOneConn(t, ctx, Limits{})
	defer stop()

	if _, _, err := ws.Read(ctx); err != nil { // the hello
		t.Fatal(err)
	}
	waitWriterGone(t, ctx, c)
	for i := range 3 {
		want := []byte{'p', byte(i)}
		if !c.push(outFrame{b: want}) {
			t.Fatalf("push %d refused", i)
		}
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if string(got) != string(want) {
			t.Fatalf("frame %d: got %x, want %x", i, got, want)
		}
		waitWriterGone(t, ctx, c)
	}
	c.outMu.Lock()
	queued, bytes := len(c.out), c.outBytes
	c.outMu.Unlock()
	if queued != 0 || bytes != 0 {
		t.Fatalf("idle connection: %d frames, %d bytes queued; want none", queued, bytes)
	}
}

// TestWriterNoLostWakeup hammers the writer's exit against concurrent
// pushes: many goroutines push small numbered frames with yields in
// between, so the writer often finds the outbox empty and exits while
// another push is starting. Every frame must arrive exactly once (a
// frame queued as the writer decides to exit and then never written
// would leave the reader waiting until the deadline), and the writer is
// gone afterwards.
func TestWriterNoLostWakeup(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c, ws, stop := serveOneConn(t, ctx, Limits{SendBuffer: 64 << 20})
	defer stop()
	if _, _, err := ws.Read(ctx); err != nil { // the hello
		t.Fatal(err)
	}

	const pushers, each = 8, 500
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for i := range each {
				b := make([]byte, 4)
				binary.BigEndian.PutUint32(b, uint32(p*each+i))
				if !c.push(outFrame{b: b}) {
					t.Errorf("push %d/%d refused", p, i)
					return
				}
				if i%4 == 0 {
					// Let the writer drain and exit.
					time.Sleep(time.Duration(i%3) * 10 * time.Microsecond)
				}
				runtime.Gosched()
			}
		})
	}
	seen := make([]bool, pushers*each)
	for range pushers * each {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v (a frame was lost)", err)
		}
		if len(b) != 4 {
			t.Fatalf("frame of %d bytes, want 4", len(b))
		}
		n := binary.BigEndian.Uint32(b)
		if int(n) >= len(seen) || seen[n] {
			t.Fatalf("frame %d unexpected or repeated", n)
		}
		seen[n] = true
	}
	wg.Wait()

	// Ping-pong: each push comes just after the previous frame was
	// read, so just as the writer, having written it, finds the outbox
	// empty and exits. A push that lands between that check and the
	// writer's exit, and so starts no writer, is never written: the
	// read waits until the deadline.
	rounds := 3000
	if testing.Short() {
		rounds = 500
	}
	for i := range rounds {
		want := []byte{'q', byte(i >> 8), byte(i)}
		if !c.push(outFrame{b: want}) {
			t.Fatalf("ping-pong push %d refused", i)
		}
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("ping-pong read %d: %v (a frame was lost)", i, err)
		}
		if string(got) != string(want) {
			t.Fatalf("ping-pong frame %d: got %x, want %x", i, got, want)
		}
	}
	waitWriterGone(t, ctx, c)
	c.outMu.Lock()
	queued, bytes := len(c.out), c.outBytes
	c.outMu.Unlock()
	if queued != 0 || bytes != 0 {
		t.Fatalf("after delivery: %d frames, %d bytes queued; want none", queued, bytes)
	}
}
