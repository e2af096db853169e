//go:build !js

package client

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// batchMax bounds the bytes a batchConn gathers while a write system call
// is in progress: four frames of the default 16 KiB block size.
const batchMax = 64 << 10

// batchConn is the TCP connection under TLS. It turns the TLS records of
// every frame that is ready at the same time into one write system call,
// waiting for nothing that is not already on its way (no timer):
//
//   - The WebSocket library flushes a masked frame in 4 KiB pieces, each
//     its own TLS record and Write. A session writer holds the batchConn
//     while it writes its frame (hold … release), so the records are
//     gathered, not written one by one.
//   - At release, the writer becomes the flusher unless one is at work
//     already or another writer holds the batchConn (that one flushes at
//     its own release). If other commands are in flight on the session,
//     the flusher first yields the processor once (runtime.Gosched):
//     goroutines already runnable — senders woken together by a batch of
//     responses, acknowledgers by a batch of deliveries — run and add
//     their frames first. A yield is no timer: with nothing else runnable
//     it returns at once. A lone command does not yield at all. The
//     flusher then writes everything gathered in one system call, and
//     again whatever was gathered during that call, until nothing is
//     left.
//   - A writer that finds a flusher at work returns at once: its frame
//     leaves with the flusher's next write. Encoding the next frame and
//     the system call for the previous ones overlap.
//   - Writes outside any hold with no flusher at work (a TLS alert or a
//     WebSocket control frame while no command is being sent) pass
//     straight through.
//
// The bytes on the wire are those TLS wrote, in the order it wrote them:
// gathered bytes only ever leave from the front of the buffer, and one
// system call at most is in progress at a time. Each system call has its
// own deadline (timeout). The first failed write fails every later one;
// the session then fails, so each command whose frame was gathered
// returns an error instead of waiting for an answer.
type batchConn struct {
	net.Conn
	timeout time.Duration // bounds each write system call; 0: none

	mu sync.Mutex // guards the fields below; held across a pass-through write
	// cond (on mu) is signalled when writing turns false.
	cond     sync.Cond
	holders  int  // session writers between hold and release
	flushing bool // a flusher owns the gathered bytes
	writing  bool // a system call of gathered bytes is in progress (outside mu)
	buf      []byte
	spare    []byte // the buffer of the last system call, for reuse
	err      error  // the first failed write; every later write fails
}

func newBatchConn(c net.Conn, timeout time.Duration) *batchConn {
	b := &batchConn{Conn: c, timeout: timeout}
	b.cond.L = &b.mu
	return b
}

// Write gathers p while anyone holds the batchConn or a flusher is at
// work, and writes it at once otherwise.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if b.holders == 0 && !b.flushing {
		// Nothing is gathered: whatever was, a flusher or a holder's
		// release has written.
		return b.writeLocked(p)
	}
	// Bound what is gathered: past batchMax, write what is gathered
	// first (after the system call in progress, if any).
	for len(b.buf) > 0 && len(b.buf)+len(p) > batchMax && b.err == nil {
		if b.writing {
			b.waitLocked()
			continue
		}
		b.writeGatheredLocked()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// writeLocked writes p in one system call (or as few as the kernel
// takes), under a deadline, with b.mu held.
func (b *batchConn) writeLocked(p []byte) (int, error) {
	n, err := b.write(p)
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *batchConn) write(p []byte) (int, error) {
	if b.timeout > 0 {
		b.Conn.SetWriteDeadline(time.Now().Add(b.timeout))
	}
	return b.Conn.Write(p)
}

// writeGatheredLocked writes what is gathered, releasing b.mu during the
// system call so that writers keep gathering behind it; b.mu is held, no
// system call of gathered bytes is in progress, and b.buf is not empty.
func (b *batchConn) writeGatheredLocked() {
	p := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.writing = true
	b.mu.Unlock()
	_, err := b.write(p)
	b.mu.Lock()
	b.writing = false
	if cap(p) <= 2*batchMax {
		b.spare = p[:0]
	}
	if err != nil && b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
}

// waitLocked waits, with b.mu held, until writing may have turned false.
func (b *batchConn) waitLocked() { b.cond.Wait() }

// hold starts gathering the caller's writes.
func (b *batchConn) hold() {
	b.mu.Lock()
	b.holders++
	b.mu.Unlock()
}

// release ends the caller's hold. The last holder to release, if no
// flusher is at work, becomes the flusher: it writes what is gathered,
// after letting runnable writers add to it if yield is set (see
// batchConn). It returns the connection's write error, if any write has
// failed.
func (b *batchConn) release(yield bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holders--
	if b.flushing || b.holders > 0 || b.err != nil {
		return b.err
	}
	b.flushing = true
	if yield {
		// A yield, not a timer: see batchConn.
		b.mu.Unlock()
		runtime.Gosched()
		b.mu.Lock()
	}
	for b.err == nil {
		if b.writing {
			// An overflowing Write is writing the front of the
			// gathered bytes.
			b.waitLocked()
			continue
		}
		// A writer holding the batchConn flushes at its release,
		// with its frame complete.
		if len(b.buf) == 0 || b.holders > 0 {
			break
		}
		b.writeGatheredLocked()
	}
	b.flushing = false
	return b.err
}
