package relaynats

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/boltstore"
	"github.com/parley-messenger/parley/relay/store/memstore"
	"github.com/parley-messenger/parley/relay/store/sqlitestore"
)

// relayConfig is one variant of Parley's relay.
type relayConfig struct {
	durable bool // a durable store (fsync'd group commit) rather than memstore
	sqlite  bool // the durable store is sqlitestore rather than boltstore
	async   bool // asyncWindow sends in flight at once rather than one
	// inFlight, if positive, replaces asyncWindow as the number of
	// asynchronous sends in flight (the relay package's own benchmark
	// keeps 64).
	inFlight int
	// blockSize, if positive, is the relay's Limits.BlockSize instead of
	// its 16 KiB default.
	blockSize int
}

// window is how many sends the variant keeps in flight when async.
func (cfg relayConfig) window() int {
	if cfg.inFlight > 0 {
		return cfg.inFlight
	}
	return asyncWindow
}

func init() {
	register(
		// boltstore is what `parley relay` and the relay's own benchmark
		// run; sqlitestore is the engine docs/BENCHMARKS.md ("Storage
		// engine choice") chose.
		system{"relay-durable", relayStart(relayConfig{durable: true})},
		system{"relay-durable-async", relayStart(relayConfig{durable: true, async: true})},
		system{"relay-durable-sqlite", relayStart(relayConfig{durable: true, sqlite: true})},
		system{"relay-durable-sqlite-async", relayStart(relayConfig{durable: true, sqlite: true, async: true})},
		system{"relay-memory", relayStart(relayConfig{})},
		system{"relay-memory-async", relayStart(relayConfig{async: true})},
	)
}

// benchLimits lifts the limits that exist to stop one abusive client, so
// that the benchmark measures the relay's work rather than its rate
// limiter: the default 2,000 commands per second per connection and 1,000
// blocks per queue would cap a one-sender benchmark. The delivery window
// is asyncWindow, as the relay's own BenchmarkRelayThroughput sets it
// (JetStream's consumer allows 1,000 unacknowledged). The 16 KiB block
// stays at its default: every 256-byte payload travels and is stored
// padded to 16 KiB.
var benchLimits = relay.Limits{
	CommandsPerSecond: 1 << 30,
	MaxQueueBlocks:    1 << 30,
	Window:            asyncWindow,
}

// relaySender sends on one client connection while a second client, the
// subscribed recipient, receives and acknowledges.
type relaySender struct {
	cfg     relayConfig
	ctx     context.Context
	cancel  context.CancelFunc
	served  chan error // Serve's result
	serving bool       // Serve was started
	st      store.Store
	closer  func() error // closes st, if it needs closing
	snd     *client.Client
	rcv     *client.Client
	sq      client.SenderQueue
	q       *client.RecipientQueue

	recvDone chan struct{} // closed when the receive loop has ended
	acks     sync.WaitGroup

	slots   chan struct{} // asynchronous sends in flight
	sends   sync.WaitGroup
	errOnce sync.Once
	sendErr error // first asynchronous send error; read after sends.Wait
}

func relayStart(cfg relayConfig) func(testing.TB, func([]byte)) (sender, error) {
	return func(tb testing.TB, deliver func([]byte)) (sender, error) {
		s := &relaySender{cfg: cfg, served: make(chan error, 1), recvDone: make(chan struct{}), slots: make(chan struct{}, cfg.window())}
		s.ctx, s.cancel = context.WithTimeout(context.Background(), deliveryTimeout)
		switch {
		case cfg.durable && cfg.sqlite:
			ss, err := sqlitestore.Open(filepath.Join(tb.TempDir(), "relay.sqlite"), sqlitestore.Options{})
			if err != nil {
				s.cancel()
				return nil, fmt.Errorf("sqlitestore: %w", err)
			}
			s.st, s.closer = ss, ss.Close
		case cfg.durable:
			bs, err := boltstore.Open(filepath.Join(tb.TempDir(), "relay.db"), boltstore.Options{})
			if err != nil {
				s.cancel()
				return nil, fmt.Errorf("boltstore: %w", err)
			}
			s.st, s.closer = bs, bs.Close
		default:
			s.st = memstore.New(memstore.Options{})
		}
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			s.close()
			return nil, err
		}
		limits := benchLimits
		limits.BlockSize = cfg.blockSize // 0: the default
		srv, err := relay.NewServer(relay.Config{Key: key, Store: s.st, Limits: limits})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("relay: %w", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.close()
			return nil, err
		}
		s.serving = true
		go func() { s.served <- srv.Serve(s.ctx, ln) }()
		addr := srv.Address(ln.Addr().String())
		if err := s.connect(addr); err != nil {
			s.close()
			return nil, err
		}
		go s.receive(deliver)
		return s, nil
	}
}

// connect dials the two clients, creates the queue, secures it with the
// sender's key (so every send is authenticated, as in use) and subscribes.
func (s *relaySender) connect(addr string) error {
	var err error
	if s.rcv, err = client.Dial(s.ctx, addr, nil); err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	if s.snd, err = client.Dial(s.ctx, addr, nil); err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	if s.q, err = s.rcv.Create(s.ctx); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	senderKey, err := client.GenerateKey()
	if err != nil {
		return err
	}
	if err := s.rcv.Secure(s.ctx, s.q, senderKey.PublicKey()); err != nil {
		return fmt.Errorf("secure: %w", err)
	}
	s.sq = s.q.SenderQueue()
	s.sq.AuthKey = senderKey
	if err := s.rcv.Subscribe(s.ctx, s.q); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

// receive hands every delivery to deliver and acknowledges it without
// waiting for the answer (at most asyncWindow acks outstanding), as the
// JetStream consumer acks. The relay deletes a block on its ack.
func (s *relaySender) receive(deliver func([]byte)) {
	defer close(s.recvDone)
	ackSlots := make(chan struct{}, asyncWindow)
	for d := range s.rcv.Deliveries() {
		if d.Ended {
			continue
		}
		deliver(d.Payload)
		ackSlots <- struct{}{}
		s.acks.Add(1)
		go func(seq uint64) {
			defer func() { <-ackSlots; s.acks.Done() }()
			// ErrNoBlock: a duplicate delivery, already acknowledged.
			if err := s.rcv.Ack(s.ctx, s.q, seq); err != nil && !errors.Is(err, client.ErrNoBlock) {
				return // the benchmark then misses a message and reports it
			}
		}(d.Seq)
	}
}

// send: synchronously, Send returns once the relay has stored the block
// (fsync'd, for the durable store); asynchronously, up to asyncWindow
// Sends run at once on the same connection (as JetStream's async publish),
// so the durable store can commit several in one sync.
func (s *relaySender) send(p []byte) error {
	if !s.cfg.async {
		return s.snd.Send(s.ctx, &s.sq, p)
	}
	s.slots <- struct{}{}
	s.sends.Add(1)
	go func() {
		defer func() { <-s.slots; s.sends.Done() }()
		if err := s.snd.Send(s.ctx, &s.sq, p); err != nil {
			s.errOnce.Do(func() { s.sendErr = err })
		}
	}()
	return nil
}

func (s *relaySender) drain() error {
	s.sends.Wait()
	return s.sendErr
}

func (s *relaySender) close() {
	s.sends.Wait()
	if s.snd != nil {
		s.snd.Close()
	}
	if s.rcv != nil {
		s.rcv.Close() // closes Deliveries: the receive loop ends
		<-s.recvDone
	}
	s.acks.Wait()
	s.cancel()
	if s.serving {
		<-s.served
	}
	if s.closer != nil {
		s.closer()
	}
}
