//go:build !js

package client

import (
	"bytes"
	"errors"
	"io"
	"net"
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
	b := &batchConn{Conn: server, timeout: time.Second}
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
	if err := b.release(); err != nil {
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
	b := &batchConn{Conn: server, timeout: time.Second}
	b.hold()
	if _, err := b.Write([]byte("frame")); err != nil {
		t.Fatalf("held write: %v", err)
	}
	if err := b.release(); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("release to a closed peer: %v, want io.ErrClosedPipe", err)
	}
	if _, err := b.Write([]byte("next")); err == nil {
		t.Fatal("write after a failed release succeeded")
	}
	server.Close()
}
