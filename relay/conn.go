package relay

import (
	"context"
	"crypto/ecdh"
	"crypto/subtle"
	"errors"
	"sync"
	"sync/atomic"
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
// reader-owned; the writer goroutine, which exists only while frames are
// queued or being written, owns the WebSocket's write side; other
// connections touch only the outbox and subs, under their mutexes.
type conn struct {
	s        *Server
	ws       *websocket.Conn
	raw      *gatherConn // under TLS; nil if not served by Serve
	exporter []byte
	ctx      context.Context
	cancel   context.CancelFunc

	// Watchdogs, instead of a context with a timer per read and per
	// write (coder/websocket arms a context.AfterFunc for every read and
	// write whose context can be cancelled): one timer each per
	// connection, and an atomic clock reading per message.
	start      time.Time    // the connection's clock starts here
	lastRead   atomic.Int64 // when the last message was read, since start
	writeBegan atomic.Int64 // when the frame being written was begun, since start; 0 if none
	idle       *time.Timer  // idleCheck: IdleTimeout without a message closes
	wdog       *time.Timer  // writeCheck: a write longer than WriteTimeout closes

	// reader-owned
	lastCorr  uint64 // highest corr_id of an authenticated command
	authCache map[authCacheKey]authEntry
	tokens    float64
	lastFill  time.Time

	// The outbox. An idle connection has no writer goroutine: the
	// enqueue that finds none running starts one (writing), and the
	// writer exits when it finds out empty. Both decisions are taken
	// under outMu, so a frame queued while the writer is deciding to
	// exit is either taken by it or starts the next one.
	outMu    sync.Mutex // guards out, outBytes, drained, live and writing
	out      []outFrame
	outBytes int           // queued plus being written
	drained  chan struct{} // closed (and replaced) when the writer finishes a batch
	live     bool          // run is serving: an enqueue may start a writer
	writing  bool          // a writer goroutine runs (or is starting)
	writers  sync.WaitGroup

	// Sends and acks are stored concurrently, so that one connection's
	// writes share the store's group commit; appendSem bounds them.
	appendSem chan struct{}
	appends   sync.WaitGroup

	subMu sync.Mutex // guards subs
	subs  map[store.ID]*subscription
}

// outFrame is a frame queued for the writer. buf, when set, is the pooled
// buffer holding it (Server.frameBuf), returned to the pool once the frame
// is written.
type outFrame struct {
	b   []byte
	buf *[]byte
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
		start:     time.Now(),
		drained:   make(chan struct{}),
		appendSem: make(chan struct{}, maxConcurrentSends),
		subs:      make(map[store.ID]*subscription),
	}
}

// run serves the connection until it fails or ctx is done. It owns the
// writer goroutines (started by enqueueLocked while it is live) and
// waits for them.
func (c *conn) run(ctx context.Context) {
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	c.ws.SetReadLimit(int64(readLimit(c.s.limits.BlockSize)))

	// Reads and writes get a context that is never done, so that the
	// WebSocket library sets up no timer for each of them; the
	// connection's end (c.cancel, from any goroutine), the idle timeout
	// and the write timeout close the WebSocket instead, which ends a
	// blocked read or write.
	closed := make(chan struct{})
	context.AfterFunc(c.ctx, func() {
		defer close(closed)
		if c.raw != nil {
			// First the socket: a gathered write blocked under
			// gatherConn's lock fails at once, and TLS's close_notify
			// does not wait behind it.
			c.raw.Close()
		}
		c.ws.CloseNow()
	})
	c.idle = time.AfterFunc(c.s.limits.IdleTimeout, c.idleCheck)
	c.wdog = time.AfterFunc(c.s.limits.WriteTimeout, c.writeCheck)
	c.wdog.Stop()

	c.outMu.Lock()
	c.live = true
	c.outMu.Unlock()
	defer func() {
		c.idle.Stop()
		c.wdog.Stop()
		c.cancel()
		<-closed // the AfterFunc above has closed the WebSocket
		c.appends.Wait()
		// Pushes from other connections go on until
		// dropSubscriptions; once live is false they start no writer,
		// so none is added to writers after (or during) its Wait.
		c.outMu.Lock()
		c.live = false
		c.outMu.Unlock()
		c.writers.Wait()
		c.dropSubscriptions()
	}()
	rctx := context.WithoutCancel(c.ctx)

	hello := &wire.Command{Type: wire.TypeHello, MinVersion: wire.Version, MaxVersion: wire.Version, BlockSize: uint32(c.s.limits.BlockSize)}
	if !c.respond(responseFrame(0, nil, hello)) {
		c.ws.CloseNow()
		return
	}
	for {
		typ, r, err := c.ws.Reader(rctx)
		if err != nil {
			c.ws.CloseNow()
			return
		}
		// A frame buffer is taken only once a message has begun to
		// arrive, so an idle connection holds none; it goes back to the
		// pool once the frame has been handled (serveFrame copies out
		// whatever outlives it).
		buf := c.s.frameBuf()
		data, err := wire.ReadAppend(r, (*buf)[:0], c.s.frameBufSize)
		c.lastRead.Store(int64(time.Since(c.start)))
		if err != nil {
			c.s.framePool.Put(buf)
			c.ws.CloseNow()
			return
		}
		if typ != websocket.MessageBinary {
			c.s.framePool.Put(buf)
			c.fatal(0, wire.CodeMalformed)
			return
		}
		ok := c.serveFrame(data)
		c.s.framePool.Put(buf)
		if !ok {
			return
		}
	}
}

// idleCheck runs when the idle timer fires: if no message was read for
// IdleTimeout the connection ends, else the timer is set for the rest.
func (c *conn) idleCheck() {
	silent := time.Since(c.start) - time.Duration(c.lastRead.Load())
	if rest := c.s.limits.IdleTimeout - silent; rest > 0 {
		c.idle.Reset(rest)
		return
	}
	c.cancel()
}

// writeCheck runs when the write watchdog fires: if the frame being
// written was begun WriteTimeout ago or more the connection ends, else
// the watchdog is set for the rest. The writer sets it at the start of a
// batch and stops it at the end.
func (c *conn) writeCheck() {
	began := c.writeBegan.Load()
	if began == 0 {
		return // between batches
	}
	elapsed := time.Since(c.start) - time.Duration(began)
	if rest := c.s.limits.WriteTimeout - elapsed; rest > 0 {
		c.wdog.Reset(rest)
		return
	}
	c.cancel()
}

// sinceStart is the connection's clock, never 0 (0 means "no write").
func (c *conn) sinceStart() int64 {
	return max(1, int64(time.Since(c.start)))
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
// write ends the connection. It is started by the enqueue that finds no
// writer running and returns once the outbox is empty, or when the
// connection ends (leaving writing set, so that no other starts).
func (c *conn) writer() {
	wctx := context.WithoutCancel(c.ctx) // see run
	for {
		if c.ctx.Err() != nil {
			return
		}
		c.outMu.Lock()
		batch := c.out
		c.out = nil
		if len(batch) == 0 {
			// Under outMu: the next enqueue sees writing false and
			// starts a writer, so no frame is left behind.
			c.writing = false
			c.outMu.Unlock()
			return
		}
		c.outMu.Unlock()
		n := 0
		c.wdog.Reset(c.s.limits.WriteTimeout)
		if c.raw != nil {
			// One system call for the batch (gatherConn).
			c.raw.begin()
		}
		for _, f := range batch {
			c.writeBegan.Store(c.sinceStart())
			err := c.ws.Write(wctx, websocket.MessageBinary, f.b)
			if err != nil {
				if c.raw != nil {
					c.raw.end()
				}
				c.cancel()
				return
			}
			n += len(f.b)
			if f.buf != nil {
				c.s.framePool.Put(f.buf)
			}
		}
		if c.raw != nil {
			c.writeBegan.Store(c.sinceStart())
			if c.raw.end() != nil {
				c.cancel()
				return
			}
		}
		c.writeBegan.Store(0)
		c.wdog.Stop()
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
			c.enqueueLocked(outFrame{b: frame})
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
func (c *conn) push(f outFrame) bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.outBytes+len(f.b) > c.s.limits.SendBuffer {
		c.cancel()
		return false
	}
	c.enqueueLocked(f)
	return true
}

// enqueueLocked queues f and, if no writer runs and run is serving,
// starts one. c.outMu must be held.
func (c *conn) enqueueLocked(f outFrame) {
	c.out = append(c.out, f)
	c.outBytes += len(f.b)
	if c.live && !c.writing {
		c.writing = true
		c.writers.Go(c.writer)
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
