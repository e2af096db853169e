package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"slices"
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

// writeTimeout bounds one write system call; handshakeTimeout the
// connection setup up to the relay's hello.
const (
	writeTimeout     = 10 * time.Second
	handshakeTimeout = 15 * time.Second
)

// request is one command to send; own and relay are set for an
// authenticated command. A send carries its payload apart from cmd: it is
// padded straight into the frame.
type request struct {
	cmd     *wire.Command
	payload []byte // send
	entity  ID
	role    byte
	own     *ecdh.PrivateKey
	relay   *ecdh.PublicKey
}

func (r *request) hasEntity() bool {
	return r.cmd.Type != wire.TypeCreate && r.cmd.Type != wire.TypePing
}

// batcher gathers the TLS records written while it is held and writes
// them, with those of other frames ready at the same time, in one system
// call (batch.go). release yields to runnable writers first if told that
// other commands are in flight.
type batcher interface {
	hold()
	release(yield bool) error
}

// macID names a command-authentication key: one queue role (role and
// entity) with one own key, on the session that holds the map.
type macID struct {
	role   byte
	entity ID
	own    [wire.KeySize]byte
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
	batch     batcher

	wmu  sync.Mutex // guards corr, macs and wbuf; holds writes in corr_id order
	corr uint64
	macs map[macID][wire.MACSize]byte
	// wbuf is the buffer every frame is encoded in: the WebSocket
	// library has copied (masked) a frame by the time Write returns, so
	// one block-sized buffer serves every command of the session.
	wbuf []byte

	pmu     sync.Mutex // guards pending
	pending map[uint64]chan wire.Command

	rbuf []byte // the reader's message buffer, reused for every message
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
		macs:      make(map[macID][wire.MACSize]byte),
		pending:   make(map[uint64]chan wire.Command),
		rbuf:      make([]byte, 0, int(hello.BlockSize)+wire.SealedOverhead+wire.FrameOverhead),
		wbuf:      make([]byte, 0, frameSize(&request{cmd: &wire.Command{Type: wire.TypeSend}}, int(hello.BlockSize))),
	}
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	c.mu.Lock()
	c.blockSz = s.blockSize
	c.mu.Unlock()
	s.readerWG.Go(s.reader)
	return s, nil
}

// fail ends the session with err. It closes the connection, which
// unblocks the reader and any writer: they pass no context to the
// WebSocket library, which would arm a timer and an AfterFunc for every
// read and write. Client.serve calls fail when the client is closed.
func (s *session) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		s.cancel()
		s.ws.CloseNow()
	})
}

// close ends the session and waits for its reader.
func (s *session) close() {
	s.fail(ErrDisconnected)
	s.ws.CloseNow()
	s.readerWG.Wait()
}

// readMessage reads one WebSocket message into s.rbuf, which it returns;
// the next call overwrites it. The WebSocket read limit bounds its size.
func (s *session) readMessage() ([]byte, error) {
	_, r, err := s.ws.Reader(context.Background()) // see fail
	if err != nil {
		return nil, err
	}
	buf := s.rbuf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(512, len(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			s.rbuf = buf
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (s *session) reader() {
	defer close(s.done)
	for {
		data, err := s.readMessage()
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
				// cmd.Block aliases s.rbuf, which the next read
				// overwrites.
				cmd.Block = bytes.Clone(cmd.Block)
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
			// The payload is opened in s.rbuf: hand over a copy
			// of its own size, not the 16 KiB buffer.
			payload = bytes.Clone(payload)
			s.c.inbox.put(Delivery{Queue: id, Seq: cmd.Seq, Payload: payload}, s.c.deliveries)
		case wire.TypeEnd:
			s.c.forget(id)
			s.c.inbox.put(Delivery{Queue: id, Ended: true}, s.c.deliveries)
		case wire.TypeError:
			s.fail(fmt.Errorf("%w: %w", ErrDisconnected, codeErr(cmd.Code)))
			return
		}
	}
}

// macKey returns the command-authentication key of one queue role on this
// session, deriving it on first use (wire.AuthKey). s.wmu is held.
func (s *session) macKey(r *request) ([wire.MACSize]byte, error) {
	k := macID{role: r.role, entity: r.entity}
	copy(k.own[:], r.own.PublicKey().Bytes())
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
	ch := make(chan wire.Command, 1)
	corr, err := s.write(&r, ch)
	if err != nil {
		return wire.Command{}, err
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

// write encodes r's frame in s.wbuf, registers ch for its response and
// writes the frame into the batcher, which gathers it with the frames of
// other commands ready at the same time into one system call (batchConn).
func (s *session) write(r *request, ch chan wire.Command) (uint64, error) {
	s.wmu.Lock()
	s.batch.hold()
	corr, err := s.writeLocked(r, ch)
	s.wmu.Unlock()
	// Released outside s.wmu: the next writer encodes its frame while
	// this one's leaves. Only with other commands in flight may another
	// writer be about to run (their answers wake their callers).
	s.pmu.Lock()
	others := len(s.pending) > 1
	s.pmu.Unlock()
	if rerr := s.batch.release(others); rerr != nil {
		// Frames of other commands may have been gathered with this
		// one: the session fails whatever this frame's own error, so
		// that none of them waits for an answer that cannot come.
		s.fail(fmt.Errorf("%w: %w", ErrDisconnected, rerr))
		if err == nil {
			s.unpend(corr)
			return 0, s.err
		}
	}
	if errors.Is(err, ErrDisconnected) {
		s.fail(err)
		return 0, s.err
	}
	return corr, err
}

// writeLocked is write's part under s.wmu.
func (s *session) writeLocked(r *request, ch chan wire.Command) (uint64, error) {
	// The corr_id is consumed even if encoding fails: the relay requires
	// them strictly increasing, not consecutive.
	s.corr++
	corr := s.corr
	frame, auth, err := appendFrame(s.wbuf[:0], corr, r, s.blockSize)
	if err != nil {
		return 0, err
	}
	s.wbuf = frame
	if r.own != nil {
		key, err := s.macKey(r)
		if err != nil {
			return 0, err
		}
		f := signedView(frame, corr, len(auth))
		copy(auth, wire.AuthenticateFrame(&key, &f))
	}
	s.pmu.Lock()
	s.pending[corr] = ch
	s.pmu.Unlock()
	// The frame goes into the batcher's buffer; the system call happens
	// at release, bounded by the batcher's write timeout (not by the
	// caller's context: a caller giving up must not tear the connection
	// down mid-frame), and a session that fails closes the connection.
	if err := s.ws.Write(context.Background(), websocket.MessageBinary, frame); err != nil {
		s.unpend(corr)
		return 0, fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	return corr, nil
}

func (s *session) unpend(corr uint64) {
	s.pmu.Lock()
	delete(s.pending, corr)
	s.pmu.Unlock()
}
