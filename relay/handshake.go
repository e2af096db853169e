package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// handshakeListener performs the TLS 1.3 handshake (RFC 8446) of each
// accepted TCP connection before handing it to the HTTP server, with at
// most cap(slots) handshakes in progress and each bounded by a deadline.
//
// Each handshake costs the relay an ML-KEM-768 encapsulation, an X25519
// and an Ed25519 signature (X25519MLKEM768 key exchange). A TCP
// connection accepted while every slot is taken is closed at once, before
// a byte of TLS is read or written: no TLS alert is possible before a
// handshake, so the client sees the connection closed without a reason.
// A slot is released when its handshake ends, fails or times out.
//
// The listener owns one accept goroutine and one goroutine per handshake
// in progress; Close cancels and waits for all of them.
type handshakeListener struct {
	ln      net.Listener
	conf    *tls.Config
	timeout time.Duration
	slots   chan struct{} // one element per handshake in progress

	inProgress *atomic.Int64  // handshakes in progress (a metrics gauge)
	refused    *atomic.Uint64 // connections closed over the bound

	ready chan *tls.Conn // handshaken connections, to Accept
	errc  chan error     // accept errors, to Accept
	done  chan struct{}  // closed when the accept goroutine returns

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// newHandshakeListener starts accepting on ln; close it with Close.
func newHandshakeListener(ln net.Listener, conf *tls.Config, maxHandshakes int, timeout time.Duration, m *metrics) *handshakeListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &handshakeListener{
		ln:         ln,
		conf:       conf,
		timeout:    timeout,
		slots:      make(chan struct{}, maxHandshakes),
		inProgress: &m.handshakes,
		refused:    &m.handshakesRefused,
		ready:      make(chan *tls.Conn),
		errc:       make(chan error),
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
	}
	l.wg.Go(l.acceptLoop)
	return l
}

// acceptLoop accepts TCP connections and starts a handshake for each
// that finds a free slot.
func (l *handshakeListener) acceptLoop() {
	defer close(l.done)
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Hand the error to the HTTP server, which backs off before
			// its next Accept if the error is temporary, and stops if
			// it is not (and then closes this listener).
			select {
			case l.errc <- err:
				continue
			case <-l.ctx.Done():
				return
			}
		}
		select {
		case l.slots <- struct{}{}:
			l.inProgress.Add(1)
			l.wg.Go(func() { l.handshake(raw) })
		default:
			// Over the bound: closed before the handshake starts.
			raw.Close()
			l.refused.Add(1)
		}
	}
}

// handshake runs one server handshake under the deadline and releases
// its slot when the handshake ends, whatever its outcome.
func (l *handshakeListener) handshake(raw net.Conn) {
	tc := tls.Server(raw, l.conf)
	err := raw.SetDeadline(time.Now().Add(l.timeout))
	if err == nil {
		err = tc.HandshakeContext(l.ctx)
	}
	if err == nil {
		err = raw.SetDeadline(time.Time{})
	}
	// The slot is free before the gauge drops, so that a gauge read
	// never shows a slot free that is not.
	<-l.slots
	l.inProgress.Add(-1)
	if err != nil {
		// Not logged: the error would carry the client's address.
		tc.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		tc.Close()
	}
}

// Accept returns the next connection whose handshake has completed.
func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, interrupts the handshakes in progress, closes
// the connections not yet accepted and waits for every goroutine.
func (l *handshakeListener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

// Addr returns the underlying listener's address.
func (l *handshakeListener) Addr() net.Addr { return l.ln.Addr() }
