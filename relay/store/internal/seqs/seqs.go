// Package seqs is the rule by which the durable relay stores (boltstore,
// sqlitestore) assign a queue's sequence numbers, so that a sequence
// number is never given to two blocks, not even across a crash.
//
// Why a rule is needed: a store that offers store.Stager lets the relay
// show a block to its recipient under its seq before the commit holding
// the block is synced. If the process then dies (or the commit fails),
// the block is gone but the recipient has seen its seq, and its ack of
// that seq may arrive after the relay has restarted. A store that took the
// next seq from its committed counter would give the same seq to the next
// block appended, and that stale ack would remove the new block before
// anyone saw it: a block acknowledged to its sender, lost.
//
// The rule: each store keeps a boot counter, incremented and synced at
// every Open before any append; boot b assigns sequence numbers in
// [b<<BootBits, (b+1)<<BootBits). The first append to a queue in a boot
// takes max(next, b<<BootBits), where next is the queue's committed
// counter; later appends follow on. A seq seen in an earlier boot, committed
// or not, is below the floor of every later boot. Within a boot, a commit
// that fails after its seqs were staged raises the floor above them
// (Skip), since the store's counters roll back with the transaction.
//
// The first boot of a store (b = 0) assigns 1, 2, 3… exactly as before, and
// a store written before the counter existed starts at boot 0: the relays
// that wrote it delivered only committed blocks.
package seqs

import "errors"

// BootBits is the width of the sequence numbers of one boot: a queue can
// take 2^40 (about 10^12) appends per boot before it is refused.
const BootBits = 40

// MaxBoots bounds the boot counter so that every seq fits in an int64
// (sqlitestore's INTEGER): 2^23 boots, 2^63 sequence numbers.
const MaxBoots = 1 << 23

// Errors returned when a bound is reached.
var (
	ErrBootsExhausted = errors.New("store: boot counter exhausted: the store has been opened 2^23 times")
	ErrSeqsExhausted  = errors.New("store: queue's sequence numbers for this boot exhausted (2^40); reopen the store")
)

// Seqs is the sequence-number rule for one boot of a store. It is used by
// the store's committer goroutine only.
type Seqs struct {
	floor uint64 // no seq below it is assigned; raised by Skip
	limit uint64 // the first seq of the next boot
}

// ForBoot returns the rule for boot b (0 for a store's first boot, as read
// before the increment that Open syncs).
func ForBoot(b uint64) (Seqs, error) {
	if b >= MaxBoots {
		return Seqs{}, ErrBootsExhausted
	}
	return Seqs{floor: b << BootBits, limit: (b + 1) << BootBits}, nil
}

// Assign returns the seq for a queue's next block, given the queue's
// counter next (the seq its next append would take by count alone); the
// caller stores seq+1 as the new counter. It fails, having changed
// nothing, past the boot's last seq.
func (s *Seqs) Assign(next uint64) (uint64, error) {
	seq := max(next, s.floor)
	if seq >= s.limit {
		return 0, ErrSeqsExhausted
	}
	return seq, nil
}

// Skip raises the floor above seq: called after a commit failed with
// blocks staged up to seq, whose sequence numbers a recipient may have
// seen although the counters that assigned them rolled back.
func (s *Seqs) Skip(seq uint64) {
	if seq >= s.floor {
		s.floor = min(seq+1, s.limit)
	}
}
