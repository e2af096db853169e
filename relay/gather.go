package relay

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// gatherMax bounds the bytes a connection gathers before it writes them.
const gatherMax = 64 << 10

// gatherListener wraps each accepted TCP connection in a gatherConn,
// under TLS. It also bounds the sockets open at once, handshakes
// included: past max, an accepted connection is closed at once, before
// TLS (no protocol error can be sent yet), and counted in refused.
type gatherListener struct {
	net.Listener
	pool    *sync.Pool // of *[]byte with gatherMax capacity
	sockets *atomic.Int64
	max     int64
	refused *atomic.Uint64
}

func (l gatherListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.sockets.Add(1) > l.max {
			l.sockets.Add(-1)
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &gatherConn{Conn: c, pool: l.pool, sockets: l.sockets}, nil
	}
}

// gatherConn is a client's TCP connection, under TLS. While the
// connection's writer sends a batch of frames (begin … end), the TLS
// records they become are gathered and written with one system call at
// the end of the batch (or whenever gatherMax bytes are waiting), instead
// of one or two system calls per frame: the bytes on the wire are the
// same. A gather buffer is taken from the pool only while a batch is
// being written, so an idle connection holds none.
type gatherConn struct {
	net.Conn
	pool    *sync.Pool
	sockets *atomic.Int64 // the listener's count, released by the first Close
	closed  atomic.Bool

	mu        sync.Mutex // guards gathering and buf; held across a write to Conn
	gathering bool
	buf       *[]byte
}

// Write gathers p during a batch; otherwise it writes it at once. Any
// goroutine may write (TLS alerts, WebSocket control frames); what is
// gathered goes out in order with the batch.
func (g *gatherConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.gathering {
		return g.Conn.Write(p)
	}
	if g.buf != nil && len(*g.buf)+len(p) > gatherMax {
		if err := g.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= gatherMax {
		return g.Conn.Write(p)
	}
	if g.buf == nil {
		g.buf = g.pool.Get().(*[]byte)
	}
	*g.buf = append(*g.buf, p...)
	return len(p), nil
}

// begin starts gathering.
func (g *gatherConn) begin() {
	g.mu.Lock()
	g.gathering = true
	g.mu.Unlock()
}

// end stops gathering and writes what was gathered.
func (g *gatherConn) end() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gathering = false
	return g.flushLocked()
}

func (g *gatherConn) flushLocked() error {
	if g.buf == nil {
		return nil
	}
	b := g.buf
	g.buf = nil
	_, err := g.Conn.Write(*b)
	*b = (*b)[:0]
	g.pool.Put(b)
	return err
}

// Close closes the connection without taking mu, so that it ends a
// write blocked under it; anything still gathered is dropped, as it would
// be in the socket's buffer.
func (g *gatherConn) Close() error {
	if g.sockets != nil && g.closed.CompareAndSwap(false, true) {
		g.sockets.Add(-1)
	}
	return g.Conn.Close()
}

// rawConnKey carries an HTTP connection's *tls.Conn in its context
// (http.Server.ConnContext), so that a WebSocket handler finds its
// gatherConn.
type rawConnKey struct{}

func withRawConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, rawConnKey{}, c)
}

// gatherOf returns the gatherConn under a request's TLS connection, or nil.
func gatherOf(ctx context.Context) *gatherConn {
	tc, ok := ctx.Value(rawConnKey{}).(*tls.Conn)
	if !ok {
		return nil
	}
	g, _ := tc.NetConn().(*gatherConn)
	return g
}
