package relay

import (
	"context"
	"crypto/cipher"
	"crypto/ecdh"
	"errors"
	"sync"

	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// subscription is the one active subscriber of a queue. Delivery runs in
// two modes:
//
//   - catch-up: stored blocks are pushed from the oldest on. With a store
//     that offers Blocks (blockRanger), up to Window at a time; with only
//     First, one, and the next after it is acknowledged (as in SimpleX SMP,
//     where a recipient acknowledges each message before the next);
//   - live: once the queue is empty, each newly stored block is pushed as
//     soon as it is stored, up to Window unacknowledged blocks; past the
//     window, up to pendingFactor*Window more wait in memory and are pushed
//     as acknowledgements come. Past that the subscription falls back to
//     catch-up. With a blockRanger the fallback resumes at once from the
//     lowest Seq that live delivery passed over (resume), passing over
//     blocks still in flight, instead of waiting for the window to drain
//     and reading the queue again from its oldest block: that stall, one
//     window's round trip per fallback, kept a recipient that had fallen
//     behind from catching up under a steady sender. With a store
//     that stages appends (store.Stager), "stored" means staged: the
//     block's seq is fixed and its commit is under way (commands.go,
//     store), so a live block may be pushed before it is durable, and
//     even if its commit then fails.
//
// Catch-up reads what is committed; appended is called when a block is
// staged and, if that did not settle its delivery (the subscription was
// not live), again once it is committed. Under sub.mu, a catch-up read and
// an appended call are ordered, so a block is either read by the catch-up
// (its seq is then in [from, next), and appended skips it) or committed
// after the read and pushed by appended once the subscription is live:
// none falls between the modes. Appends reach appended out of Seq order,
// so a fallback's catch-up may start above a block whose appended has
// not run yet; that call moves the cursor back (skip).
//
// A block pushed twice (a send racing the switch to live, with a store
// without Blocks) is delivered twice: delivery is at least once and the
// client de-duplicates.
type subscription struct {
	id   store.ID
	aead cipher.AEAD

	mu       sync.Mutex // guards the fields below
	conn     *conn      // nil once the subscription has ended
	live     bool
	inflight map[uint64]struct{} // pushed, not yet acknowledged
	pending  []pendingBlock      // stored while the window was full, in order
	reading  bool                // a windowed catch-up is under way (blockRanger)
	next     uint64              // the catch-up reads blocks from this Seq on
	from     uint64              // the catch-up has read every block in [from, next)
	// skipped: since the last catch-up ended, live delivery passed over
	// a block (its in-memory overflow was full, or it had fallen back);
	// resume is the lowest Seq it passed over.
	skipped bool
	resume  uint64
}

// blockRanger is an optional store capability: the blocks of a queue with
// Seq >= from, oldest first, at most max. With it, catch-up keeps a whole
// window in flight; with only store.Store's First it delivers one block
// per acknowledgement. A store offering it must make blocks visible in
// Seq order.
type blockRanger interface {
	Blocks(ctx context.Context, recipient store.ID, from uint64, max int) ([]store.Block, error)
}

// pendingFactor sizes the in-memory overflow of a live subscription in
// windows.
const pendingFactor = 4

type pendingBlock struct {
	seq  uint64
	data []byte
}

func (s *Server) deliveryAEAD(q *store.Queue) (cipher.AEAD, error) {
	priv, err := s.qkeys.private(roleRecipient, q.RecipientID)
	if err != nil {
		return nil, err
	}
	pub, err := ecdh.X25519().NewPublicKey(q.DeliveryKey)
	if err != nil {
		return nil, err
	}
	return wire.DeliveryAEAD(priv, pub)
}

// subscribe makes c the queue's subscriber, ending any previous one with
// an end notice, and starts delivery.
func (s *Server) subscribe(c *conn, id store.ID, aead cipher.AEAD) {
	sub := &subscription{id: id, aead: aead, conn: c, inflight: make(map[uint64]struct{})}
	s.subMu.Lock()
	old := s.subs[id]
	s.subs[id] = sub
	s.subMu.Unlock()
	c.addSub(id, sub)
	if old != nil {
		if oc := old.end(); oc != nil && oc != c {
			oc.removeSub(id, old)
			oc.push(outFrame{b: responseFrame(0, id[:], &wire.Command{Type: wire.TypeEnd})})
		}
	}
	s.kick(sub)
}

// end detaches the subscription and returns the connection it had.
func (sub *subscription) end() *conn {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	c := sub.conn
	sub.conn = nil
	return c
}

// unsubscribe drops sub when its connection closes.
func (s *Server) unsubscribe(id store.ID, sub *subscription) {
	s.subMu.Lock()
	if s.subs[id] == sub {
		delete(s.subs, id)
	}
	s.subMu.Unlock()
	sub.end()
}

// endSubscription ends the queue's subscription (the queue was deleted)
// with an end notice.
func (s *Server) endSubscription(id store.ID) {
	s.subMu.Lock()
	sub := s.subs[id]
	delete(s.subs, id)
	s.subMu.Unlock()
	if sub == nil {
		return
	}
	if c := sub.end(); c != nil {
		c.removeSub(id, sub)
		c.push(outFrame{b: responseFrame(0, id[:], &wire.Command{Type: wire.TypeEnd})})
	}
}

func (s *Server) lookup(id store.ID) *subscription {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	return s.subs[id]
}

// kick pushes the oldest stored block when the subscription is in
// catch-up with nothing in flight, or switches it to live when the queue
// is empty. The store read runs under sub.mu so that a block stored
// meanwhile is either found here or pushed live by appended.
func (s *Server) kick(sub *subscription) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.conn == nil || sub.live || len(sub.pending) > 0 {
		return
	}
	if br, ok := s.store.(blockRanger); ok {
		s.catchUpLocked(sub, br)
		return
	}
	if len(sub.inflight) > 0 {
		return
	}
	blk, err := s.store.First(s.ctx, sub.id)
	if errors.Is(err, store.ErrNoBlock) {
		sub.live = true
		return
	}
	if err != nil {
		s.readFailed(err)
		return
	}
	s.pushLocked(sub, blk.Seq, blk.Data)
}

// catchUpLocked pushes stored blocks up to the window. A catch-up starts
// from the oldest block once nothing is in flight (so nothing pushed is
// pushed again) and then follows its cursor; when the store has nothing
// more, the subscription turns live. sub.mu is held, so a block stored
// meanwhile is either read here or pushed live by appended.
func (s *Server) catchUpLocked(sub *subscription, br blockRanger) {
	if !sub.reading {
		switch {
		case sub.skipped:
			// A fallback from live: every block below resume was
			// pushed (live delivery follows a catch-up that reached
			// the end of the queue) or has its appended still to
			// come, which moves the cursor back (skip).
			sub.reading, sub.from, sub.next = true, sub.resume, sub.resume
		case len(sub.inflight) > 0:
			return
		default:
			sub.reading, sub.from, sub.next = true, 0, 0
		}
	}
	// Blocks still in flight are passed over, so one read may push
	// nothing: read on until the window is full or the queue ends.
	for {
		room := s.limits.Window - len(sub.inflight)
		if room <= 0 {
			return
		}
		blocks, err := br.Blocks(s.ctx, sub.id, sub.next, room)
		if err != nil {
			s.readFailed(err)
			return
		}
		for _, b := range blocks {
			if _, ok := sub.inflight[b.Seq]; !ok {
				s.pushLocked(sub, b.Seq, b.Data)
			}
			sub.next = b.Seq + 1
		}
		if len(blocks) < room {
			// The end of the queue (a short read reaches it as an
			// empty one does): live from here, or a block committed
			// after the read would wait for the next
			// acknowledgement. Every block live delivery passed over
			// is now read, gone, or still to reach appended.
			sub.live, sub.reading, sub.skipped = true, false, false
			return
		}
	}
}

func (s *Server) readFailed(err error) {
	if s.ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("relay delivery read failed", "err", err)
	}
}

// appended pushes a newly staged or stored block to a live subscriber, or
// queues it in the subscription's pending list. It reports whether the
// block's delivery is settled: pushed, pending, or already read by a
// catch-up. If not (no subscription, one in catch-up, or one that falls
// back to catch-up here), a block reported when staged must be reported
// again once committed (commands.go, store): the catch-up may have read
// the store before the commit.
func (s *Server) appended(id store.ID, seq uint64, data []byte) bool {
	sub := s.lookup(id)
	if sub == nil {
		return false
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.conn == nil {
		return false
	}
	if sub.from <= seq && seq < sub.next {
		// A windowed catch-up has read the store past it (Seqs increase
		// in commit order, and blockRanger stores show blocks in Seq
		// order): the catch-up pushed it, or it is gone.
		return true
	}
	if !sub.live {
		// A catch-up reads it from the store. Only a fallback from live
		// resumes at a recorded Seq: the first catch-up of a
		// subscription reads from the oldest block, and a Seq recorded
		// before it would make it pass over the blocks stored before
		// the subscription.
		if sub.skipped {
			sub.skip(seq)
		}
		return false
	}
	switch {
	case len(sub.inflight) < s.limits.Window && len(sub.pending) == 0:
		s.pushLocked(sub, seq, data)
	case len(sub.pending) < pendingFactor*s.limits.Window:
		sub.pending = append(sub.pending, pendingBlock{seq, data})
	default:
		sub.live = false // catch up from the store (see subscription)
		sub.skip(seq)
		return false
	}
	return true
}

// skip records that live delivery passed over the block seq, and moves a
// catch-up under way back to it if the catch-up started above it: the
// block was stored, but its appended came late. Blocks the cursor passes
// again are passed over while in flight (catchUpLocked). sub.mu is held.
func (sub *subscription) skip(seq uint64) {
	if !sub.skipped || seq < sub.resume {
		sub.skipped, sub.resume = true, seq
	}
	if sub.reading && seq < sub.from {
		sub.from, sub.next = seq, seq
	}
}

// acked records that a block is no longer in flight and continues a
// catch-up.
func (s *Server) acked(id store.ID, seq uint64) {
	sub := s.lookup(id)
	if sub == nil {
		return
	}
	sub.mu.Lock()
	delete(sub.inflight, seq)
	for sub.conn != nil && len(sub.pending) > 0 && len(sub.inflight) < s.limits.Window {
		p := sub.pending[0]
		sub.pending[0] = pendingBlock{}
		sub.pending = sub.pending[1:]
		s.pushLocked(sub, p.seq, p.data)
	}
	sub.mu.Unlock()
	s.kick(sub)
}

// pushLocked re-encrypts a block to the recipient (a fresh nonce per
// delivery, so no two deliveries share bytes with each other or with the
// block as sent) and queues it. sub.mu is held.
func (s *Server) pushLocked(sub *subscription, seq uint64, data []byte) {
	buf := s.frameBuf()
	frame, err := s.deliveryFrame((*buf)[:0], sub.aead, sub.id, 0, seq, data)
	if err != nil {
		// deliveryFrame fails only on a bug: every stored value fits.
		panic("relay: marshalling a delivery: " + err.Error())
	}
	if sub.conn.push(outFrame{b: frame, buf: buf}) {
		sub.inflight[seq] = struct{}{}
		s.metrics.delivered.Add(1)
	} else {
		s.framePool.Put(buf)
	}
}

// deliveryFrame builds the block frame (answer to get with corr, or a
// notification with corr 0) for a stored value. The store holds a block's
// payload, which is padded to the block size here, inside the frame, and
// sealed in place (docs/PROTOCOL.md "Relay protocol: blocks and the
// delivery layer"). A value longer than the payload can be is a padded
// block stored by an earlier version of the relay, which stored blocks
// padded: it is sealed as it is.
//
// The frame is appended to dst (a pooled buffer, or nil).
func (s *Server) deliveryFrame(dst []byte, aead cipher.AEAD, id store.ID, corr uint64, seq uint64, data []byte) ([]byte, error) {
	if len(data) > s.limits.BlockSize-wire.PadHeaderSize {
		if corr == 0 {
			return wire.MarshalDelivery(aead, id[:], seq, id[:], data)
		}
		return wire.MarshalFrame(corr, id[:], nil, &wire.Command{Type: wire.TypeBlock, Seq: seq, Block: wire.Seal(aead, id[:], data)})
	}
	return wire.AppendDelivery(dst, aead, corr, id[:], seq, id[:], data, s.limits.BlockSize)
}
