package client

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// Protocol errors, one per error code of the relay (docs/PROTOCOL.md
// "Relay protocol: errors"). Test with errors.Is.
var (
	ErrAuth               = errors.New("bad authentication")
	ErrUnknownQueue       = errors.New("unknown queue")
	ErrNoBlock            = errors.New("no block waiting")
	ErrQueueFull          = errors.New("queue full")
	ErrTooLarge           = errors.New("block too large")
	ErrRateLimited        = errors.New("rate limited")
	ErrTooManyConnections = errors.New("relay has too many connections")
	ErrUnknownCommand     = errors.New("unknown command")
	ErrMalformed          = errors.New("malformed frame")
	ErrVersion            = errors.New("unsupported protocol version")
	ErrInternal           = errors.New("internal relay error")

	// ErrDisconnected: the connection was lost before the answer came;
	// the command may or may not have taken effect. Retrying is safe
	// (a repeated send is a duplicate the recipient drops).
	ErrDisconnected = errors.New("connection to relay lost")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client closed")
)

func codeErr(c wire.Code) error {
	switch c {
	case wire.CodeAuth:
		return ErrAuth
	case wire.CodeUnknownQueue:
		return ErrUnknownQueue
	case wire.CodeNoBlock:
		return ErrNoBlock
	case wire.CodeQueueFull:
		return ErrQueueFull
	case wire.CodeTooLarge:
		return ErrTooLarge
	case wire.CodeRateLimited:
		return ErrRateLimited
	case wire.CodeTooManyConnection:
		return ErrTooManyConnections
	case wire.CodeUnknownCommand:
		return ErrUnknownCommand
	case wire.CodeMalformed:
		return ErrMalformed
	case wire.CodeVersion:
		return ErrVersion
	}
	return fmt.Errorf("%w (code %d)", ErrInternal, uint8(c))
}

// Roles of a queue key: which side of the queue a command speaks for.
const (
	roleRecipient byte = 1
	roleSender    byte = 2
)

// writeTimeout bounds one frame write; handshakeTimeout the connection
// setup up to the relay's hello.
const (
	writeTimeout     = 10 * time.Second
	handshakeTimeout = 15 * time.Second
)

// request is one command to send; own and relay are set for an
// authenticated command.
type request struct {
	cmd    *wire.Command
	entity ID
	role   byte
	own    *ecdh.PrivateKey
	relay  *ecdh.PublicKey
}

func (r *request) hasEntity() bool {
	return r.cmd.Type != wire.TypeCreate && r.cmd.Type != wire.TypePing
}

// batcher gathers the writes of one frame into one system call
// (transport.go); hold and release bracket the frame.
type batcher interface {
	hold()
	release(timeout time.Duration) error
}

// session is one connection to the relay.
type session struct {
	c         *Client
	ws        *websocket.Conn
	exporter  []byte
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{} // closed when the reader exits
	err       error         // why; written before done is closed
	readerWG  sync.WaitGroup
	failOnce  sync.Once
	blockSize int
	batch     batcher // nil: writes pass straight through

	wmu  sync.Mutex // guards corr and macs; holds writes in corr_id order
	corr uint64
	macs map[string][wire.MACSize]byte

	pmu     sync.Mutex // guards pending
	pending map[uint64]chan wire.Command
}

// dial opens a session: TLS 1.3 pinned to the fingerprint, WebSocket, and
// the relay's hello.
func (c *Client) dial(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	ws, exporter, batch, err := c.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("relay client: connecting to %s: %w", c.hostport, err)
	}
	fail := func(err error) (*session, error) {
		ws.CloseNow()
		return nil, fmt.Errorf("relay client: connecting to %s: %w", c.hostport, err)
	}
	ws.SetReadLimit(wire.MaxBlockSize + wire.SealedOverhead + wire.FrameOverhead)
	_, data, err := ws.Read(ctx)
	if err != nil {
		return fail(fmt.Errorf("reading hello: %w", err))
	}
	f, err := wire.ParseFrame(data)
	if err != nil {
		return fail(fmt.Errorf("hello: %w", ErrMalformed))
	}
	hello, err := wire.ParseCommand(f.Command)
	if err != nil {
		return fail(fmt.Errorf("hello: %w", ErrMalformed))
	}
	if hello.Type == wire.TypeError {
		return fail(codeErr(hello.Code))
	}
	if hello.Type != wire.TypeHello || hello.BlockSize < wire.MinBlockSize || hello.BlockSize > wire.MaxBlockSize {
		return fail(fmt.Errorf("hello: %w", ErrMalformed))
	}
	if hello.MinVersion > wire.Version || hello.MaxVersion < wire.Version {
		return fail(ErrVersion)
	}
	s := &session{
		c:         c,
		ws:        ws,
		exporter:  exporter,
		done:      make(chan struct{}),
		blockSize: int(hello.BlockSize),
		batch:     batch,
		macs:      make(map[string][wire.MACSize]byte),
		pending:   make(map[uint64]chan wire.Command),
	}
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	c.mu.Lock()
	c.blockSz = s.blockSize
	c.mu.Unlock()
	s.readerWG.Go(s.reader)
	return s, nil
}

// fail ends the session with err.
func (s *session) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		s.cancel()
	})
}

// close ends the session and waits for its reader.
func (s *session) close() {
	s.fail(ErrDisconnected)
	s.ws.CloseNow()
	s.readerWG.Wait()
}

func (s *session) reader() {
	defer close(s.done)
	for {
		_, data, err := wire.ReadMessage(s.ctx, s.ws, s.blockSize+wire.SealedOverhead+wire.FrameOverhead)
		if err != nil {
			s.fail(fmt.Errorf("%w: %w", ErrDisconnected, err))
			return
		}
		f, err := wire.ParseFrame(data)
		if err != nil {
			s.fail(fmt.Errorf("%w: %w", ErrDisconnected, ErrMalformed))
			return
		}
		cmd, err := wire.ParseCommand(f.Command)
		if err != nil {
			s.fail(fmt.Errorf("%w: %w", ErrDisconnected, ErrMalformed))
			return
		}
		if f.CorrID != 0 {
			s.pmu.Lock()
			ch := s.pending[f.CorrID]
			delete(s.pending, f.CorrID)
			s.pmu.Unlock()
			if ch != nil {
				ch <- cmd // buffered
			}
			continue
		}
		var id ID
		if len(f.EntityID) == IDSize {
			copy(id[:], f.EntityID)
		}
		switch cmd.Type {
		case wire.TypeBlock:
			s.c.mu.Lock()
			sub := s.c.subs[id]
			s.c.mu.Unlock()
			if sub == nil {
				continue
			}
			payload, err := open(sub.aead, id, cmd.Block)
			if err != nil {
				// Not acknowledged: it stays on the relay.
				s.c.opts.Logger.Warn("relay client: undecryptable delivery dropped", "err", err)
				continue
			}
			s.c.inbox.put(Delivery{Queue: id, Seq: cmd.Seq, Payload: payload})
		case wire.TypeEnd:
			s.c.forget(id)
			s.c.inbox.put(Delivery{Queue: id, Ended: true})
		case wire.TypeError:
			s.fail(fmt.Errorf("%w: %w", ErrDisconnected, codeErr(cmd.Code)))
			return
		}
	}
}

// macKey returns the command-authentication key of one queue role on this
// session, deriving it on first use (wire.AuthKey). s.wmu is held.
func (s *session) macKey(r *request) ([wire.MACSize]byte, error) {
	k := string([]byte{r.role}) + string(r.entity[:]) + string(r.own.PublicKey().Bytes())
	if m, ok := s.macs[k]; ok {
		return m, nil
	}
	m, err := wire.AuthKey(r.own, r.relay, s.exporter)
	if err != nil {
		return m, err
	}
	s.macs[k] = m
	return m, nil
}

// roundTrip sends one command and waits for its response.
func (s *session) roundTrip(ctx context.Context, r request) (wire.Command, error) {
	body, err := r.cmd.Marshal()
	if err != nil {
		return wire.Command{}, err
	}
	ch := make(chan wire.Command, 1)
	s.wmu.Lock()
	s.corr++
	corr := s.corr
	f := wire.Frame{Version: wire.Version, CorrID: corr, Command: body}
	if r.hasEntity() {
		f.EntityID = r.entity[:]
	}
	if r.own != nil {
		key, err := s.macKey(&r)
		if err != nil {
			s.wmu.Unlock()
			return wire.Command{}, err
		}
		f.Authenticator = wire.AuthenticateFrame(&key, &f)
	}
	data, err := f.Marshal()
	if err != nil {
		s.wmu.Unlock()
		return wire.Command{}, err
	}
	s.pmu.Lock()
	s.pending[corr] = ch
	s.pmu.Unlock()
	// The write is bounded by the session, not the caller: a caller
	// giving up must not tear the connection down mid-frame.
	wctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
	if s.batch != nil {
		s.batch.hold()
	}
	err = s.ws.Write(wctx, websocket.MessageBinary, data)
	if s.batch != nil {
		if rerr := s.batch.release(writeTimeout); err == nil && rerr != nil {
			err = rerr
		}
	}
	cancel()
	s.wmu.Unlock()
	if err != nil {
		s.unpend(corr)
		s.fail(fmt.Errorf("%w: %w", ErrDisconnected, err))
		return wire.Command{}, s.err
	}
	select {
	case resp := <-ch:
		if resp.Type == wire.TypeError {
			return resp, codeErr(resp.Code)
		}
		return resp, nil
	case <-s.done:
		return wire.Command{}, s.err
	case <-ctx.Done():
		s.unpend(corr)
		return wire.Command{}, ctx.Err()
	}
}

func (s *session) unpend(corr uint64) {
	s.pmu.Lock()
	delete(s.pending, corr)
	s.pmu.Unlock()
}

// call runs a command on the current session, waiting for one while the
// client reconnects.
func (c *Client) call(ctx context.Context, r request) (wire.Command, error) {
	for {
		c.mu.Lock()
		s, ready := c.sess, c.ready
		c.mu.Unlock()
		if s != nil {
			return s.roundTrip(ctx, r)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return wire.Command{}, ctx.Err()
		case <-c.ctx.Done():
			return wire.Command{}, ErrClosed
		}
	}
}

// loop owns the sessions: it serves one until it ends, then reconnects
// with exponential backoff and jitter, and resubscribes.
func (c *Client) loop(s *session) {
	for {
		c.serve(s)
		c.mu.Lock()
		c.sess = nil
		c.ready = make(chan struct{})
		c.mu.Unlock()
		s.close()
		if c.ctx.Err() != nil {
			return
		}
		c.opts.Logger.Info("relay client: connection lost; reconnecting", "err", s.err)
		backoff := c.opts.MinBackoff
		for {
			// Equal jitter: a uniformly random wait between half the
			// backoff and the backoff, so clients cut off together do
			// not come back together.
			wait := backoff/2 + mrand.N(backoff/2+1)
			t := time.NewTimer(wait)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			s, err = c.dial(c.ctx)
			if err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			c.opts.Logger.Debug("relay client: reconnect failed", "err", err)
			backoff = min(2*backoff, c.opts.MaxBackoff)
		}
	}
}

// serve publishes s, renews subscriptions, and pings until s ends.
func (c *Client) serve(s *session) {
	c.mu.Lock()
	c.sess = s
	close(c.ready)
	c.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.resubscribe(s) })
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-c.ctx.Done():
			s.fail(ErrClosed)
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(s.ctx, c.opts.PingInterval)
			resp, err := s.roundTrip(pctx, request{cmd: &wire.Command{Type: wire.TypePing}})
			cancel()
			if err == nil && resp.Type != wire.TypePong {
				err = ErrMalformed
			}
			if err != nil {
				s.fail(fmt.Errorf("%w: keep-alive: %w", ErrDisconnected, err))
			}
		}
	}
}

// resubscribe renews every subscription on a new session.
func (c *Client) resubscribe(s *session) {
	c.mu.Lock()
	subs := make([]*subscribed, 0, len(c.subs))
	for _, sub := range c.subs {
		subs = append(subs, sub)
	}
	c.mu.Unlock()
	for _, sub := range subs {
		_, err := s.roundTrip(s.ctx, recipientReq(sub.q, &wire.Command{Type: wire.TypeSubscribe}))
		// Many queues may exceed the relay's command rate: wait and
		// retry rather than lose a subscription.
		for wait := 50 * time.Millisecond; errors.Is(err, ErrRateLimited); wait = min(2*wait, 2*time.Second) {
			t := time.NewTimer(wait)
			select {
			case <-s.done:
				t.Stop()
				return
			case <-t.C:
			}
			_, err = s.roundTrip(s.ctx, recipientReq(sub.q, &wire.Command{Type: wire.TypeSubscribe}))
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrAuth), errors.Is(err, ErrUnknownQueue):
			c.forget(sub.q.RecipientID)
			c.inbox.put(Delivery{Queue: sub.q.RecipientID, Ended: true})
		default:
			return // the session is failing; the next one retries
		}
	}
}

// dispatch hands buffered deliveries to the Deliveries channel; it is
// owned by the Client and never runs under a lock.
func (c *Client) dispatch() {
	defer close(c.deliveries)
	for {
		d, ok := c.inbox.get(c.ctx)
		if !ok {
			return
		}
		select {
		case c.deliveries <- d:
		case <-c.ctx.Done():
			return
		}
	}
}

// queue is an unbounded FIFO of deliveries; the relay's per-subscription
// window bounds how much it holds.
type queue struct {
	mu     sync.Mutex
	items  []Delivery
	signal chan struct{} // cap 1
}

func newQueue() *queue { return &queue{signal: make(chan struct{}, 1)} }

func (q *queue) put(d Delivery) {
	q.mu.Lock()
	q.items = append(q.items, d)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue) get(ctx context.Context) (Delivery, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			d := q.items[0]
			q.items[0] = Delivery{}
			q.items = q.items[1:]
			q.mu.Unlock()
			return d, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return Delivery{}, false
		}
	}
}
