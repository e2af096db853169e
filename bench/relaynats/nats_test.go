package relaynats

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsConfig is one NATS variant.
type natsConfig struct {
	tls        bool // client connections over TLS 1.3
	jetStream  bool // a file-storage stream and a consumer instead of core pub/sub
	syncAlways bool // JetStream fsyncs every write (server option SyncAlways)
	async      bool // JetStream publishes asynchronously with asyncWindow acks outstanding
}

// asyncWindow is how many asynchronous JetStream publishes may await their
// acknowledgement at once.
const asyncWindow = 256

const (
	subject    = "bench.msgs"
	streamName = "BENCH"
)

func init() {
	register(
		system{"nats-core", natsStart(natsConfig{})},
		system{"nats-core-tls", natsStart(natsConfig{tls: true})},
		system{"jetstream", natsStart(natsConfig{jetStream: true})},
		system{"jetstream-tls", natsStart(natsConfig{jetStream: true, tls: true})},
		system{"jetstream-async", natsStart(natsConfig{jetStream: true, async: true})},
		system{"jetstream-syncalways", natsStart(natsConfig{jetStream: true, syncAlways: true})},
		system{"jetstream-syncalways-async", natsStart(natsConfig{jetStream: true, syncAlways: true, async: true})},
	)
}

// natsSender publishes on one connection while a second connection
// receives, as the relay's sender and recipient use two connections.
type natsSender struct {
	srv      *server.Server
	pub, sub *nats.Conn
	js       jetstream.JetStream
	consume  jetstream.ConsumeContext
	cfg      natsConfig
	ctx      context.Context
	cancel   context.CancelFunc
}

func natsStart(cfg natsConfig) func(testing.TB, func([]byte)) (sender, error) {
	return func(tb testing.TB, deliver func([]byte)) (sender, error) {
		opts := &server.Options{
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			NoLog:      true,
			NoSigs:     true,
			MaxPending: 1 << 30, // never drop a slow consumer in a flood
		}
		if cfg.jetStream {
			opts.JetStream = true
			opts.StoreDir = tb.TempDir()
			// Unset, SyncInterval defaults to two minutes: the "default
			// sync" the issue compares against.
			opts.SyncAlways = cfg.syncAlways
		}
		var clientTLS *tls.Config
		if cfg.tls {
			serverTLS, err := selfSignedTLS()
			if err != nil {
				return nil, err
			}
			opts.TLS = true
			opts.TLSConfig = serverTLS
			opts.TLSTimeout = 5
			// The benchmark trusts the loopback server it just started.
			clientTLS = &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true} //nolint:gosec
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			return nil, fmt.Errorf("nats server: %w", err)
		}
		srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			srv.Shutdown()
			return nil, fmt.Errorf("nats server not ready")
		}
		s := &natsSender{srv: srv, cfg: cfg}
		s.ctx, s.cancel = context.WithTimeout(context.Background(), deliveryTimeout)
		connect := func() (*nats.Conn, error) {
			o := []nats.Option{nats.NoReconnect()}
			if clientTLS != nil {
				o = append(o, nats.Secure(clientTLS))
			}
			return nats.Connect(srv.ClientURL(), o...)
		}
		if s.sub, err = connect(); err != nil {
			s.close()
			return nil, fmt.Errorf("nats connect: %w", err)
		}
		if s.pub, err = connect(); err != nil {
			s.close()
			return nil, fmt.Errorf("nats connect: %w", err)
		}
		if !cfg.jetStream {
			sub, err := s.sub.Subscribe(subject, func(m *nats.Msg) { deliver(m.Data) })
			if err != nil {
				s.close()
				return nil, fmt.Errorf("nats subscribe: %w", err)
			}
			if err := sub.SetPendingLimits(-1, -1); err != nil {
				s.close()
				return nil, err
			}
			// The subscription is registered on the server before the
			// first publish.
			if err := s.sub.Flush(); err != nil {
				s.close()
				return nil, err
			}
			return s, nil
		}
		if err := s.startJetStream(deliver); err != nil {
			s.close()
			return nil, err
		}
		return s, nil
	}
}

// startJetStream creates a file-storage work-queue stream (a message is
// removed once the consumer acknowledges it, as the relay deletes a block
// on the recipient's ack) and a durable consumer with explicit acks on the
// recipient's connection.
func (s *natsSender) startJetStream(deliver func([]byte)) error {
	var err error
	js, err := jetstream.New(s.pub, jetstream.WithPublishAsyncMaxPending(asyncWindow))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	s.js = js
	if _, err := js.CreateStream(s.ctx, jetstream.StreamConfig{
		Name:      streamName,
		Subjects:  []string{subject},
		Storage:   jetstream.FileStorage,
		Retention: jetstream.WorkQueuePolicy,
	}); err != nil {
		return fmt.Errorf("jetstream stream: %w", err)
	}
	subJS, err := jetstream.New(s.sub)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cons, err := subJS.CreateOrUpdateConsumer(s.ctx, streamName, jetstream.ConsumerConfig{
		Durable:   "recipient",
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return fmt.Errorf("jetstream consumer: %w", err)
	}
	s.consume, err = cons.Consume(func(m jetstream.Msg) {
		deliver(m.Data())
		_ = m.Ack() // the ack deletes the message from the work queue
	})
	if err != nil {
		return fmt.Errorf("jetstream consume: %w", err)
	}
	return nil
}

// send: core NATS counts a message as sent once it is in the client's
// write buffer (Publish never waits for the server); JetStream synchronous
// publishing waits for the stream's ack (the message is stored, and with
// SyncAlways fsync'd); asynchronous publishing returns at once while at
// most asyncWindow acks are outstanding.
func (s *natsSender) send(p []byte) error {
	switch {
	case !s.cfg.jetStream:
		return s.pub.Publish(subject, p)
	case s.cfg.async:
		_, err := s.js.PublishAsync(subject, p, jetstream.WithStallWait(deliveryTimeout))
		return err
	default:
		_, err := s.js.Publish(s.ctx, subject, p)
		return err
	}
}

func (s *natsSender) drain() error {
	switch {
	case !s.cfg.jetStream:
		return s.pub.Flush()
	case s.cfg.async:
		select {
		case <-s.js.PublishAsyncComplete():
			return nil
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	default:
		return nil
	}
}

func (s *natsSender) close() {
	if s.consume != nil {
		s.consume.Stop()
		<-s.consume.Closed()
	}
	if s.pub != nil {
		s.pub.Close()
	}
	if s.sub != nil {
		s.sub.Close()
	}
	s.cancel()
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// selfSignedTLS returns a TLS 1.3 server configuration with a fresh Ed25519
// self-signed certificate, as the relay uses.
func selfSignedTLS() (*tls.Config, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
	}, nil
}
