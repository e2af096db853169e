//go:build !js

package client

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// failingBatcher passes holds through and reports every release as a
// failed write, as a connection that broke under frames gathered from
// several commands would.
type failingBatcher struct{ batcher }

var errInjected = errors.New("injected write failure")

func (f failingBatcher) release(yield bool) error {
	f.batcher.release(yield)
	return errInjected
}

// TestFailedWriteFailsSessionWhateverOwnError: a failed write may have
// carried other commands' frames, so it must end the session even when
// the writer that saw it had failed to encode its own frame (a relay key
// giving an all-zero X25519 output); otherwise the other commands would
// wait for answers that cannot come.
func TestFailedWriteFailsSessionWhateverOwnError(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	srv, err := relay.NewServer(relay.Config{Key: key, Store: memstore.New(memstore.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(serveCtx, ln) })
	defer wg.Wait()
	defer stop()

	// No keep-alive: its write would fail the session too.
	c, err := Dial(ctx, srv.Address(ln.Addr().String()), &Options{PingInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.mu.Lock()
	ready := c.ready
	c.mu.Unlock()
	<-ready // the first session is published
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	s.wmu.Lock()
	s.batch = failingBatcher{s.batch}
	s.wmu.Unlock()

	lowOrder, err := ecdh.X25519().NewPublicKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	own, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sq := SenderQueue{RelayKey: lowOrder, AuthKey: own}
	err = c.Send(ctx, &sq, []byte("never sent"))
	if err == nil || errors.Is(err, ErrDisconnected) {
		t.Fatalf("send with a low-order relay key: %v, want its own encoding error", err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		t.Fatal("the session outlived a failed write")
	}
	if !errors.Is(s.err, errInjected) {
		t.Fatalf("session ended with %v, want the write failure", s.err)
	}
}
