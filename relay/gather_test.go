package relay

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// recordConn records each Write it is given.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// TestGatherConnOneWritePerBatch: during a batch the records written
// reach the socket in one write, in order, and past gatherMax in more;
// outside a batch every write goes through at once; the bytes are the
// same either way.
func TestGatherConnOneWritePerBatch(t *testing.T) {
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, gatherMax); return &b }}
	rc := &recordConn{}
	g := &gatherConn{Conn: rc, pool: pool}

	g.Write([]byte("before"))
	g.begin()
	var want []byte
	for i := range 5 {
		p := bytes.Repeat([]byte{byte('a' + i)}, 100)
		g.Write(p)
		want = append(want, p...)
	}
	if len(rc.writes) != 1 {
		t.Fatalf("%d writes reached the socket mid-batch, want only the one before it", len(rc.writes))
	}
	if err := g.end(); err != nil {
		t.Fatal(err)
	}
	if len(rc.writes) != 2 || !bytes.Equal(rc.writes[1], want) {
		t.Fatalf("batch reached the socket as %d writes", len(rc.writes)-1)
	}

	// Past gatherMax the gathered bytes are written before more are taken.
	rc.writes = nil
	g.begin()
	big := bytes.Repeat([]byte{1}, 16<<10)
	var all []byte
	for range 9 {
		g.Write(big)
		all = append(all, big...)
	}
	g.end()
	if len(rc.writes) < 2 {
		t.Fatalf("%d writes for %d bytes, want more than one (gatherMax %d)", len(rc.writes), len(all), gatherMax)
	}
	var got []byte
	for _, w := range rc.writes {
		if len(w) > gatherMax {
			t.Fatalf("a write of %d bytes exceeds gatherMax", len(w))
		}
		got = append(got, w...)
	}
	if !bytes.Equal(got, all) {
		t.Fatal("gathered bytes differ from those written")
	}
	if g.buf != nil {
		t.Fatal("gather buffer still held after the batch")
	}
}
