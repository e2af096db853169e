// Package relay is Parley's relay server: identifier-free store-and-forward
// queues with real-time push, over TLS 1.3 and WebSocket.
//
// A recipient creates a queue and receives two unrelated random IDs, one
// for itself and one for its sender; the relay never learns who talks to
// whom. Every block is padded to one fixed size and re-encrypted to the
// recipient on its way out, so a block entering and the block leaving
// cannot be matched by their bytes. The protocol is specified in
// docs/PROTOCOL.md, section "Relay protocol"; the client library is
// package relay/client.
package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// Limits bound what one client may cost the relay. Zero fields take the
// defaults below; each violation is answered with its own protocol error.
type Limits struct {
	// BlockSize is the fixed size of every block (default 16384 bytes,
	// wire.DefaultBlockSize). A larger block is refused with "block too
	// large".
	BlockSize int
	// MaxQueueBlocks is how many blocks one queue may hold (default
	// 1000); beyond it a send is refused with "queue full".
	MaxQueueBlocks int
	// BlockTTL is how long an undelivered block is kept (default 21
	// days, as SimpleX servers keep messages).
	BlockTTL time.Duration
	// CommandsPerSecond is the sustained command rate of one connection
	// (default 2000); a burst of twice as many is allowed. Beyond it a
	// command is refused with "rate limited".
	CommandsPerSecond int
	// MaxConnections is how many client connections the relay serves at
	// once (default 20000); one more is told "too many connections".
	MaxConnections int
	// MaxPending is how many more TCP connections may be open on top of
	// MaxConnections, in their TLS handshake or WebSocket upgrade
	// (default 1024; each has ReadHeaderTimeout, 10 s, to finish). Past
	// MaxConnections+MaxPending sockets a new one is closed at once,
	// before TLS, so that a flood of sockets that never finish a
	// handshake bounds the relay's memory and file descriptors instead
	// of exhausting them.
	MaxPending int
	// Window is how many pushed blocks one subscription may have
	// unacknowledged (default 64).
	Window int
	// SendBuffer bounds the bytes queued for one connection (default
	// 4 MiB, and at least two windows of blocks). A subscriber that lets it fill is disconnected; its blocks
	// stay stored for its next subscription.
	SendBuffer int
	// WriteTimeout bounds one write to a client (default 10 s).
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long
	// (default 5 minutes; clients ping every 30 s).
	IdleTimeout time.Duration
	// ExpiryInterval is how often expired blocks are removed (default
	// 1 minute, or BlockTTL/4 if that is shorter).
	ExpiryInterval time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.BlockSize, wire.DefaultBlockSize)
	def(&l.MaxQueueBlocks, 1000)
	defd(&l.BlockTTL, 21*24*time.Hour)
	def(&l.CommandsPerSecond, 2000)
	def(&l.MaxConnections, 20000)
	def(&l.MaxPending, 1024)
	def(&l.Window, 64)
	def(&l.SendBuffer, 4<<20)
	defd(&l.WriteTimeout, 10*time.Second)
	defd(&l.IdleTimeout, 5*time.Minute)
	defd(&l.ExpiryInterval, min(time.Minute, l.BlockTTL/4))
	// A full window of pushed blocks must fit in half the send buffer,
	// or a subscriber keeping up with its window would be cut off.
	l.SendBuffer = max(l.SendBuffer, 2*l.Window*(l.BlockSize+wire.SealedOverhead+wire.FrameOverhead))
	return l
}

// Config configures a Server.
type Config struct {
	// Key is the relay's identity key; its fingerprint is in the address.
	Key ed25519.PrivateKey
	// Store keeps queues and blocks.
	Store store.Store
	// Limits; zero fields take defaults.
	Limits Limits
	// Logger receives structured logs; nil discards them. At info level
	// the relay never logs queue IDs, keys or client addresses.
	Logger *slog.Logger
}

// Server is a relay. Create it with NewServer and run it with Serve.
type Server struct {
	key    ed25519.PrivateKey
	store  store.Store
	limits Limits
	log    *slog.Logger
	qkeys  *queueKeys
	tls    *tls.Config

	conns   atomic.Int64 // connections being served
	sockets atomic.Int64 // TCP connections open, handshakes included
	metrics metrics

	serving atomic.Bool
	ctx     context.Context // Serve's context; set before any connection

	subMu sync.Mutex // guards subs
	subs  map[store.ID]*subscription

	// framePool holds *[]byte buffers of frameBufSize bytes' capacity,
	// enough for the largest frame a client may send and for a delivery:
	// reads and deliveries reuse them instead of allocating 16 KiB each.
	framePool    sync.Pool
	frameBufSize int
	// gatherPool holds the gatherConns' buffers (*[]byte, gatherMax).
	gatherPool sync.Pool
}

// frameBuf takes a frame buffer from the pool.
func (s *Server) frameBuf() *[]byte {
	if b, ok := s.framePool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, s.frameBufSize)
	return &b
}

// NewServer returns a relay server for cfg.
func NewServer(cfg Config) (*Server, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("relay: config: no Ed25519 key")
	}
	if cfg.Store == nil {
		return nil, errors.New("relay: config: no store")
	}
	l := cfg.Limits.withDefaults()
	if l.BlockSize < wire.MinBlockSize || l.BlockSize > wire.MaxBlockSize {
		return nil, fmt.Errorf("relay: config: block size %d outside [%d, %d]", l.BlockSize, wire.MinBlockSize, wire.MaxBlockSize)
	}
	cert, err := certificate(cfg.Key)
	if err != nil {
		return nil, err
	}
	qk, err := newQueueKeys(cfg.Key)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		key:    cfg.Key,
		store:  cfg.Store,
		limits: l,
		log:    logger,
		qkeys:  qk,
		// TLS 1.3 only (RFC 8446). CurvePreferences is left at Go's
		// default, which puts the hybrid X25519MLKEM768 first.
		tls: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"http/1.1"},
		},
		subs: make(map[store.ID]*subscription),
		// Room for the read limit (conn.run) and one byte more, so
		// that reading a frame of the largest size reaches EOF without
		// growing the buffer; a delivery is smaller.
		frameBufSize: max(readLimit(l.BlockSize)+1, wire.DeliveryFrameSize(wire.IDSize, l.BlockSize)),
		gatherPool: sync.Pool{New: func() any {
			b := make([]byte, 0, gatherMax)
			return &b
		}},
	}, nil
}

// Address returns the relay's parley:// address at hostport, in the
// canonical form of the function Address, or "" if hostport is not a
// valid host:port (the function Address says why).
func (s *Server) Address(hostport string) string {
	a, err := Address(s.key.Public().(ed25519.PublicKey), hostport)
	if err != nil {
		return ""
	}
	return a
}

// Limits returns the limits in force, defaults filled in.
func (s *Server) Limits() Limits { return s.limits }

// Serve accepts connections on ln (plain TCP; Serve adds TLS) until ctx is
// done, then closes every connection, waits for their goroutines and
// returns nil. It runs the expiry loop meanwhile. Serve may be called once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("relay: Serve called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx

	var handlers sync.WaitGroup
	mux := http.NewServeMux()
	mux.HandleFunc(wire.WebSocketPath, func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		s.handle(ctx, w, r)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // TLS handshake noise would carry client addresses
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       withRawConn,
	}

	var wg sync.WaitGroup
	wg.Go(func() { s.expiryLoop(ctx) })
	errc := make(chan error, 1)
	wg.Go(func() {
		errc <- srv.Serve(tls.NewListener(gatherListener{
			Listener: ln,
			pool:     &s.gatherPool,
			sockets:  &s.sockets,
			max:      int64(s.limits.MaxConnections) + int64(s.limits.MaxPending),
			refused:  &s.metrics.refused,
		}, s.tls))
	})
	s.log.Info("relay serving", "block_size", s.limits.BlockSize)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		errc <- nil
	}
	cancel()
	// Close the listener and idle connections; hijacked WebSocket
	// connections end through ctx, which every handler watches.
	srv.Close()
	handlers.Wait()
	wg.Wait()
	s.log.Info("relay stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// expiryLoop removes blocks older than BlockTTL; it is owned by Serve.
func (s *Server) expiryLoop(ctx context.Context) {
	t := time.NewTicker(s.limits.ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := s.store.Expire(ctx, now.Add(-s.limits.BlockTTL))
			if err != nil && ctx.Err() == nil {
				s.log.Error("relay expiry failed", "err", err)
				continue
			}
			if n > 0 {
				s.metrics.expired.Add(uint64(n))
				s.log.Info("relay expired blocks", "count", n)
			}
		}
	}
}

func (s *Server) handle(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		http.Error(w, "TLS required", http.StatusBadRequest)
		return
	}
	exporter, err := r.TLS.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterLength)
	if err != nil {
		http.Error(w, "TLS exporter unavailable", http.StatusBadRequest)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Clients are not browsers; origin checks do not apply, and
		// compression would let sizes leak through a CRIME-like channel.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.log.Debug("relay websocket upgrade failed", "err", err)
		return
	}
	if n := s.conns.Add(1); n > int64(s.limits.MaxConnections) {
		s.conns.Add(-1)
		s.metrics.refused.Add(1)
		refuse(ctx, ws, s.limits.WriteTimeout)
		return
	}
	defer s.conns.Add(-1)
	s.metrics.connections.Add(1)
	c := newConn(s, ws, exporter)
	c.raw = gatherOf(r.Context())
	c.run(ctx)
}

// refuse tells a client over the connection limit why, and closes.
func refuse(ctx context.Context, ws *websocket.Conn, timeout time.Duration) {
	frame := errorFrame(0, nil, wire.CodeTooManyConnection)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if ws.Write(wctx, websocket.MessageBinary, frame) == nil {
		ws.Close(websocket.StatusTryAgainLater, "too many connections")
		return
	}
	ws.CloseNow()
}

// readLimit is the largest WebSocket message a client may send: a send
// frame carrying a full block, with room to spare.
func readLimit(blockSize int) int {
	return blockSize + wire.FrameOverhead + 1024
}

// errorFrame encodes an error response.
func errorFrame(corr uint64, entity []byte, code wire.Code) []byte {
	return responseFrame(corr, entity, &wire.Command{Type: wire.TypeError, Code: code})
}

func responseFrame(corr uint64, entity []byte, cmd *wire.Command) []byte {
	out, err := wire.MarshalFrame(corr, entity, nil, cmd)
	if err != nil {
		// Every response type is known and every block fits: a bug.
		panic("relay: marshalling a response: " + err.Error())
	}
	return out
}

// codeOf maps a store error to a protocol error code.
func codeOf(err error) wire.Code {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return wire.CodeUnknownQueue
	case errors.Is(err, store.ErrQueueFull):
		return wire.CodeQueueFull
	case errors.Is(err, store.ErrNoBlock):
		return wire.CodeNoBlock
	}
	return wire.CodeInternal
}
