package relay

import (
	"context"
	"crypto/ecdh"
	"crypto/subtle"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// authCacheMax bounds the per-connection cache of derived authentication
// keys; past it the cache is emptied and refilled on demand.
const authCacheMax = 4096

// maxConcurrentSends bounds the sends and acks of one connection being
// stored at once.
const maxConcurrentSends = 64

// conn is one client connection. Its reader (run) owns the fields marked
// reader-owned; the writer goroutine owns the WebSocket's write side;
// other connections touch only the outbox and subs, under their mutexes.
type conn struct {
	s        *Server
	ws       *websocket.Conn
	exporter []byte
	ctx      context.Context
	cancel   context.CancelFunc

	// reader-owned
	lastCorr  uint64 // highest corr_id of an authenticated command
	authCache map[authCacheKey]authEntry
	tokens    float64
	lastFill  time.Time

	outMu    sync.Mutex // guards out, outBytes and drained
	out      [][]byte
	outBytes int           // queued plus being written
	outReady chan struct{} // cap 1: out has frames
	drained  chan struct{} // closed (and replaced) when the writer finishes a batch

	// Sends and acks are stored concurrently, so that one connection's
	// writes share the store's group commit; appendSem bounds them.
	appendSem chan struct{}
	appends   sync.WaitGroup

	subMu sync.Mutex // guards subs
	subs  map[store.ID]*subscription
}

type authCacheKey struct {
	role byte
	id   store.ID
}

// authEntry caches the derived command-authentication key for one queue
// role on this connection, with the client key it was derived for, so a
// re-secured queue is noticed.
type authEntry struct {
	clientKey [wire.KeySize]byte
	key       [wire.MACSize]byte
}

func newConn(s *Server, ws *websocket.Conn, exporter []byte) *conn {
	return &conn{
		s:         s,
		ws:        ws,
		exporter:  exporter,
		authCache: make(map[authCacheKey]authEntry),
		tokens:    float64(2 * s.limits.CommandsPerSecond),
		lastFill:  time.Now(),
		outReady:  make(chan struct{}, 1),
		drained:   make(chan struct{}),
		appendSem: make(chan struct{}, maxConcurrentSends),
		subs:      make(map[store.ID]*subscription),
	}
}

// run serves the connection until it fails or ctx is done. It owns the
// writer goroutine and waits for it.
func (c *conn) run(ctx context.Context) {
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	c.ws.SetReadLimit(int64(c.s.limits.BlockSize + wire.FrameOverhead + 1024))

	var wg sync.WaitGroup
	wg.Go(c.writer)
	defer func() {
		c.cancel()
		c.appends.Wait()
		wg.Wait()
		c.dropSubscriptions()
	}()

	hello := &wire.Command{Type: wire.TypeHello, MinVersion: wire.Version, MaxVersion: wire.Version, BlockSize: uint32(c.s.limits.BlockSize)}
	if !c.respond(responseFrame(0, nil, hello)) {
		c.ws.CloseNow()
		return
	}
	for {
		rctx, cancel := context.WithTimeout(c.ctx, c.s.limits.IdleTimeout)
		typ, data, err := wire.ReadMessage(rctx, c.ws, c.s.limits.BlockSize+wire.FrameOverhead)
		cancel()
		if err != nil {
			// Read closes the connection when its context ends.
			c.ws.CloseNow()
			return
		}
		if typ != websocket.MessageBinary {
			c.fatal(0, wire.CodeMalformed)
			return
		}
		if !c.serveFrame(data) {
			return
		}
	}
}

// fatal tells the client why and closes only this connection.
func (c *conn) fatal(corr uint64, code wire.Code) {
	c.s.metrics.errors.Add(1)
	wctx, cancel := context.WithTimeout(c.ctx, c.s.limits.WriteTimeout)
	defer cancel()
	if c.ws.Write(wctx, websocket.MessageBinary, errorFrame(corr, nil, code)) != nil {
		c.ws.CloseNow()
		return
	}
	c.ws.Close(websocket.StatusPolicyViolation, code.String())
}

// writer sends queued frames, each within WriteTimeout; a failed or slow
// write ends the connection.
func (c *conn) writer() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.outReady:
		}
		c.outMu.Lock()
		batch := c.out
		c.out = nil
		c.outMu.Unlock()
		n := 0
		for _, f := range batch {
			wctx, cancel := context.WithTimeout(c.ctx, c.s.limits.WriteTimeout)
			err := c.ws.Write(wctx, websocket.MessageBinary, f)
			cancel()
			if err != nil {
				c.cancel()
				return
			}
			n += len(f)
		}
		c.outMu.Lock()
		c.outBytes -= n
		close(c.drained)
		c.drained = make(chan struct{})
		c.outMu.Unlock()
	}
}

// respond queues a response from the reader or a send in progress. When the send buffer is half
// full it waits for the writer: a client that does not read its responses
// stops being read, and nobody else waits.
func (c *conn) respond(frame []byte) bool {
	for {
		c.outMu.Lock()
		if c.outBytes < c.s.limits.SendBuffer/2 {
			c.enqueueLocked(frame)
			c.outMu.Unlock()
			return true
		}
		drained := c.drained
		c.outMu.Unlock()
		select {
		case <-drained:
		case <-c.ctx.Done():
			return false
		}
	}
}

// push queues a notification from any goroutine without waiting. If the
// send buffer is full the subscriber is too slow: the connection is
// closed, and its blocks stay stored for its next subscription.
func (c *conn) push(frame []byte) bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.outBytes+len(frame) > c.s.limits.SendBuffer {
		c.cancel()
		return false
	}
	c.enqueueLocked(frame)
	return true
}

func (c *conn) enqueueLocked(frame []byte) {
	c.out = append(c.out, frame)
	c.outBytes += len(frame)
	select {
	case c.outReady <- struct{}{}:
	default:
	}
}

// allow takes one token from the connection's bucket (refilled at
// CommandsPerSecond, holding at most twice that).
func (c *conn) allow() bool {
	now := time.Now()
	rate := float64(c.s.limits.CommandsPerSecond)
	c.tokens = min(2*rate, c.tokens+now.Sub(c.lastFill).Seconds()*rate)
	c.lastFill = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// authenticate checks a command's authenticator against the client key
// of the queue role it concerns. Cheapest checks first: length, then the
// corr_id replay guard, then the (cached) key and one HMAC. The replay
// guard advances only after the authenticator verifies.
func (c *conn) authenticate(f *wire.Frame, role byte, id store.ID, clientKey []byte) bool {
	if len(f.Authenticator) != wire.MACSize || len(clientKey) != wire.KeySize {
		return false
	}
	if f.CorrID <= c.lastCorr {
		return false
	}
	ck := authCacheKey{role, id}
	e, ok := c.authCache[ck]
	if !ok || subtle.ConstantTimeCompare(e.clientKey[:], clientKey) != 1 {
		var err error
		e, err = c.deriveAuth(role, id, clientKey)
		if err != nil {
			return false
		}
		if len(c.authCache) >= authCacheMax {
			clear(c.authCache)
		}
		c.authCache[ck] = e
	}
	if !wire.VerifyFrame(&e.key, f) {
		return false
	}
	c.lastCorr = f.CorrID
	return true
}

func (c *conn) deriveAuth(role byte, id store.ID, clientKey []byte) (authEntry, error) {
	var e authEntry
	priv, err := c.s.qkeys.private(role, id)
	if err != nil {
		return e, err
	}
	pub, err := ecdh.X25519().NewPublicKey(clientKey)
	if err != nil {
		return e, err
	}
	e.key, err = wire.AuthKey(priv, pub, c.exporter)
	if err != nil {
		return e, err
	}
	copy(e.clientKey[:], clientKey)
	return e, nil
}

// serveFrame handles one frame; false ends the connection.
func (c *conn) serveFrame(data []byte) bool {
	s := c.s
	s.metrics.commands.Add(1)
	f, err := wire.ParseFrame(data)
	if errors.Is(err, wire.ErrVersion) {
		c.fatal(0, wire.CodeVersion)
		return false
	}
	if err != nil {
		c.fatal(0, wire.CodeMalformed)
		return false
	}
	if !c.allow() {
		return c.fail(&f, wire.CodeRateLimited)
	}
	cmd, err := wire.ParseCommand(f.Command)
	if errors.Is(err, wire.ErrUnknownCommand) {
		return c.fail(&f, wire.CodeUnknownCommand)
	}
	if err != nil || cmd.Type > wire.TypePing {
		// A relay response type sent by a client, or a command that
		// does not parse: the framing is broken.
		c.fatal(f.CorrID, wire.CodeMalformed)
		return false
	}
	return c.dispatch(&f, &cmd)
}

// fail sends an error response and keeps the connection.
func (c *conn) fail(f *wire.Frame, code wire.Code) bool {
	c.s.metrics.errors.Add(1)
	return c.respond(errorFrame(f.CorrID, f.EntityID, code))
}

func (c *conn) ok(f *wire.Frame) bool {
	return c.respond(responseFrame(f.CorrID, f.EntityID, &wire.Command{Type: wire.TypeOK}))
}

// addSub and removeSub track this connection's subscriptions.
func (c *conn) addSub(id store.ID, sub *subscription) {
	c.subMu.Lock()
	c.subs[id] = sub
	c.subMu.Unlock()
}

func (c *conn) removeSub(id store.ID, sub *subscription) {
	c.subMu.Lock()
	if c.subs[id] == sub {
		delete(c.subs, id)
	}
	c.subMu.Unlock()
}

// dropSubscriptions ends every subscription of a closed connection.
func (c *conn) dropSubscriptions() {
	c.subMu.Lock()
	subs := c.subs
	c.subs = make(map[store.ID]*subscription)
	c.subMu.Unlock()
	for id, sub := range subs {
		c.s.unsubscribe(id, sub)
	}
}
