//go:build !js

package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
)

// TestBatchConnSameBytes: writes while held leave at release in one
// write, byte for byte and in order; outside a hold they pass through.
func TestBatchConnSameBytes(t *testing.T) {
	defer leakcheck.Check(t)()
	client, server := net.Pipe()
	defer client.Close()
	got := make(chan []byte, 1)
	reads := make(chan int, 1)
	go func() {
		var all []byte
		n := 0
		buf := make([]byte, 1<<20)
		for {
			k, err := client.Read(buf)
			if err != nil {
				break
			}
			n++
			all = append(all, buf[:k]...)
		}
		reads <- n
		got <- all
	}()
	b := newBatchConn(server, time.Second)
	want := []byte("passed through")
	if _, err := b.Write(want); err != nil {
		t.Fatal(err)
	}
	b.hold()
	for i := range 5 { // a 16 KiB frame in the WebSocket library's 4 KiB pieces
		p := bytes.Repeat([]byte{byte(i)}, 4096)
		if _, err := b.Write(p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p...)
	}
	if err := b.release(true); err != nil {
		t.Fatal(err)
	}
	server.Close()
	if n := <-reads; n != 2 {
		t.Errorf("%d reads, want 2 (one passed through, one batch)", n)
	}
	if g := <-got; !bytes.Equal(g, want) {
		t.Fatalf("batched bytes differ from those written (%d vs %d bytes)", len(g), len(want))
	}
}

// TestBatchConnFailureSticks: a failed release fails every later write.
func TestBatchConnFailureSticks(t *testing.T) {
	defer leakcheck.Check(t)()
	client, server := net.Pipe()
	client.Close()
	b := newBatchConn(server, time.Second)
	b.hold()
	if _, err := b.Write([]byte("frame")); err != nil {
		t.Fatalf("held write: %v", err)
	}
	if err := b.release(true); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("release to a closed peer: %v, want io.ErrClosedPipe", err)
	}
	if _, err := b.Write([]byte("next")); err == nil {
		t.Fatal("write after a failed release succeeded")
	}
	server.Close()
}

// gateConn records each Write and, if gated, blocks it until the test
// lets it proceed: a write system call in progress.
type gateConn struct {
	net.Conn // nil: only Write is called (no timeout, no deadline)
	gated    bool
	entered  chan []byte   // a copy of each write, as it starts
	proceed  chan struct{} // one value lets one gated write finish
}

func newGateConn(gated bool) *gateConn {
	return &gateConn{gated: gated, entered: make(chan []byte, 16), proceed: make(chan struct{})}
}

func (g *gateConn) Write(p []byte) (int, error) {
	g.entered <- bytes.Clone(p)
	if g.gated {
		<-g.proceed
	}
	return len(p), nil
}

// frame writes one frame as a session writer does: hold, its records,
// release.
func frame(b *batchConn, records ...[]byte) error {
	b.hold()
	for _, r := range records {
		if _, err := b.Write(r); err != nil {
			b.release(true)
			return err
		}
	}
	return b.release(true)
}

func record(fill byte, n int) []byte { return bytes.Repeat([]byte{fill}, n) }

// nextWrite returns the next write to start on g, failing if none starts
// before ctx ends (a frame left unwritten).
func nextWrite(t *testing.T, ctx context.Context, g *gateConn) []byte {
	t.Helper()
	select {
	case p := <-g.entered:
		return p
	case <-ctx.Done():
		t.Fatal("no write started: a gathered frame was left unwritten")
		return nil
	}
}

// TestBatchConnGathersBehindWrite: frames written while a write system
// call is in progress do not wait for it (their release returns at once,
// without a system call of their own) and all leave together in the next
// single write, in order.
func TestBatchConnGathersBehindWrite(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := newGateConn(true)
	b := newBatchConn(g, 0)
	a, x, y := record('a', 4096), record('x', 4096), record('y', 1000)
	errA := make(chan error, 1)
	go func() { errA <- frame(b, a) }()
	if p := nextWrite(t, ctx, g); !bytes.Equal(p, a) {
		t.Fatalf("first write: %d bytes, want frame a alone", len(p))
	}
	// a's write is in progress: x and y are gathered behind it.
	done := make(chan error, 1)
	go func() { done <- errors.Join(frame(b, x), frame(b, y)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case p := <-g.entered:
		t.Fatalf("a write of %d bytes started while another was in progress", len(p))
	case <-ctx.Done():
		t.Fatal("a writer waited for the write in progress instead of leaving its frame")
	}
	g.proceed <- struct{}{} // a's write ends; the flusher writes the rest
	if p := nextWrite(t, ctx, g); !bytes.Equal(p, append(bytes.Clone(x), y...)) {
		t.Fatalf("second write: %d bytes, want frames x and y together, in order", len(p))
	}
	g.proceed <- struct{}{}
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-g.entered:
		t.Fatalf("a third write of %d bytes, want two", len(p))
	default:
	}
	// Nothing held, no flusher: a write passes straight through.
	go func() { _, err := b.Write([]byte("alert")); done <- err }()
	if p := nextWrite(t, ctx, g); string(p) != "alert" {
		t.Fatalf("pass-through write: %q", p)
	}
	g.proceed <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBatchConnLastHolderFlushes: a writer releasing while another still
// holds the batchConn leaves its frame to that one, whose release writes
// both frames in one write.
func TestBatchConnLastHolderFlushes(t *testing.T) {
	g := newGateConn(false)
	b := newBatchConn(g, 0)
	a, x := record('a', 300), record('x', 500)
	b.hold()
	b.Write(a)
	b.hold()
	b.Write(x)
	if err := b.release(true); err != nil {
		t.Fatal(err)
	}
	if len(g.entered) != 0 {
		t.Fatal("a frame was written while another writer still held the batchConn")
	}
	if err := b.release(true); err != nil {
		t.Fatal(err)
	}
	if len(g.entered) != 1 {
		t.Fatalf("%d writes, want 1", len(g.entered))
	}
	if p := <-g.entered; !bytes.Equal(p, append(bytes.Clone(a), x...)) {
		t.Fatalf("the write holds %d bytes, want both frames in order", len(p))
	}
}

// TestBatchConnBounded: behind a write in progress, a batchConn gathers
// at most batchMax bytes; the writer that would pass it waits for the
// write in progress, then writes what is gathered itself. No write is
// larger than batchMax and the bytes leave in order.
func TestBatchConnBounded(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := newGateConn(true)
	b := newBatchConn(g, 0)
	first := record(0, 16<<10)
	want := bytes.Clone(first)
	errs := make(chan error, 2)
	go func() { errs <- frame(b, first) }()
	wrote := [][]byte{nextWrite(t, ctx, g)}
	var records [][]byte
	for i := range 6 {
		r := record(byte(i+1), 16<<10+22) // a full TLS record
		records = append(records, r)
		want = append(want, r...)
	}
	go func() { errs <- frame(b, records...) }()
	// The first write ends; the rest leave in writes of at most
	// batchMax bytes.
	for n := len(wrote[0]); n < len(want); {
		g.proceed <- struct{}{}
		p := nextWrite(t, ctx, g)
		wrote = append(wrote, p)
		n += len(p)
	}
	g.proceed <- struct{}{}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := bytes.Join(wrote, nil); !bytes.Equal(got, want) {
		t.Fatalf("%d bytes written, want %d in order", len(got), len(want))
	}
	for i, p := range wrote {
		if len(p) > batchMax {
			t.Errorf("write %d: %d bytes, over batchMax (%d)", i, len(p), batchMax)
		}
	}
	if len(wrote) > 4 {
		t.Errorf("%d writes for 7 records, want at most 4 (one, then as many as fit in batchMax)", len(wrote))
	}
}

// TestBatchConnYieldGathersRunnableWriter: with other commands in flight
// the flusher yields before writing, so a writer that is already runnable
// (as senders woken together by a batch of responses are) adds its frame
// to the same write. One processor makes it deterministic: the new
// goroutine cannot run until the flusher yields.
func TestBatchConnYieldGathersRunnableWriter(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	g := newGateConn(false)
	b := newBatchConn(g, 0)
	a, x := record('a', 300), record('x', 500)
	b.hold()
	b.Write(a)
	done := make(chan error, 1)
	go func() { done <- frame(b, x) }() // runnable, not running
	if err := b.release(true); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(g.entered) != 1 {
		t.Fatalf("%d writes, want 1: the runnable writer's frame did not join the flusher's write", len(g.entered))
	}
	if p := <-g.entered; !bytes.Equal(p, append(bytes.Clone(a), x...)) {
		t.Fatalf("the write holds %d bytes, want both frames in order", len(p))
	}
}
