package e2e

import (
	"io"
	"net"
	"os"
	"sync"
	"testing"
)

// tap is a TCP proxy in front of a relay that appends every byte it
// carries, both ways, to a capture file: what a network observer between
// the clients and the relay sees. The relay advertises the tap's address
// (parley relay --public), so every client goes through it.
type tap struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex // guards capture writes and conns
	capture *os.File
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

func startTap(t *testing.T, backend, capturePath string) *tap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(capturePath)
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{ln: ln, backend: backend, capture: f, conns: map[net.Conn]bool{}}
	tp.wg.Go(tp.accept)
	t.Cleanup(tp.close)
	return tp
}

func (tp *tap) addr() string { return tp.ln.Addr().String() }

func (tp *tap) accept() {
	for {
		c, err := tp.ln.Accept()
		if err != nil {
			return
		}
		tp.wg.Go(func() { tp.serve(c) })
	}
}

func (tp *tap) track(c net.Conn, add bool) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if add {
		if tp.conns == nil { // closed
			return false
		}
		tp.conns[c] = true
	} else if tp.conns != nil {
		delete(tp.conns, c)
	}
	return true
}

func (tp *tap) serve(c net.Conn) {
	defer c.Close()
	if !tp.track(c, true) {
		return
	}
	defer tp.track(c, false)
	b, err := net.Dial("tcp", tp.backend)
	if err != nil {
		return // the relay is down: the client sees the connection close
	}
	defer b.Close()
	if !tp.track(b, true) {
		return
	}
	defer tp.track(b, false)
	var wg sync.WaitGroup
	wg.Go(func() { tp.copy(b, c); b.Close() })
	tp.copy(c, b)
	c.Close()
	wg.Wait()
}

// copy copies src to dst and into the capture.
func (tp *tap) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			tp.mu.Lock()
			tp.capture.Write(buf[:n])
			tp.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// close stops the tap and waits for its goroutines.
func (tp *tap) close() {
	tp.ln.Close()
	tp.mu.Lock()
	for c := range tp.conns {
		c.Close()
	}
	tp.conns = nil
	tp.mu.Unlock()
	tp.wg.Wait()
	tp.capture.Close()
}
