package relay

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// rangedStore adds the optional Blocks capability to a memstore by keeping
// a shadow copy of each queue's blocks. Writes are serialized so blocks
// become visible in Seq order, as blockRanger requires.
type rangedStore struct {
	store.Store
	mu     sync.Mutex
	shadow map[store.ID][]store.Block
}

func newRangedStore() *rangedStore {
	return &rangedStore{Store: memstore.New(memstore.Options{}), shadow: make(map[store.ID][]store.Block)}
}

func (r *rangedStore) Append(ctx context.Context, id store.ID, data []byte, at time.Time, max int) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq, err := r.Store.Append(ctx, id, data, at, max)
	if err == nil {
		r.shadow[id] = append(r.shadow[id], store.Block{Seq: seq, Data: slices.Clone(data), Received: at})
	}
	return seq, err
}

func (r *rangedStore) Ack(ctx context.Context, id store.ID, seq uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.Store.Ack(ctx, id, seq)
	if err == nil {
		r.shadow[id] = slices.DeleteFunc(r.shadow[id], func(b store.Block) bool { return b.Seq == seq })
	}
	return err
}

func (r *rangedStore) DeleteQueue(ctx context.Context, id store.ID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.shadow, id)
	return r.Store.DeleteQueue(ctx, id)
}

func (r *rangedStore) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, bs := range r.shadow {
		r.shadow[id] = slices.DeleteFunc(bs, func(b store.Block) bool { return b.Received.Before(cutoff) })
	}
	return r.Store.Expire(ctx, cutoff)
}

func (r *rangedStore) Blocks(_ context.Context, id store.ID, from uint64, max int) ([]store.Block, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.Block
	for _, b := range r.shadow[id] {
		if b.Seq >= from && len(out) < max {
			out = append(out, b)
		}
	}
	return out, nil
}

// TestWindowedCatchUp: with a store offering Blocks, a subscriber to a
// queue with a backlog receives a whole window of blocks without
// acknowledging any; without it, exactly one.
func TestWindowedCatchUp(t *testing.T) {
	for _, ranged := range []bool{true, false} {
		name := "ranged"
		if !ranged {
			name = "first-only"
		}
		t.Run(name, func(t *testing.T) {
			defer leakcheck.Check(t)()
			ctx := testCtx(t)
			// memstore offers Blocks itself; hide it behind the bare
			// interface for the first-only case.
			var st store.Store = struct{ store.Store }{memstore.New(memstore.Options{})}
			if ranged {
				st = newRangedStore()
			}
			r := startRelayOn(t, st, Limits{Window: 8})
			defer r.stop()
			rc := dialRaw(t, ctx, r.addr)
			defer rc.close()
			q := rc.create(ctx, 1)
			for i := range 20 {
				rc.roundTrip(ctx, rc.sendBlock(uint64(2+i), q, []byte{byte(i)}), wire.TypeOK)
			}
			rc.roundTrip(ctx, rc.recipient(100, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
			want := 8
			if !ranged {
				want = 1
			}
			var seqs []uint64
			for i := range want {
				f, cmd := rc.read(ctx)
				if f.CorrID != 0 || cmd.Type != wire.TypeBlock {
					t.Fatalf("got %v, want a pushed block", cmd.Type)
				}
				if got := q.open(t, cmd.Block); got[0] != byte(i) {
					t.Fatalf("delivery %d carried block %d", i, got[0])
				}
				seqs = append(seqs, cmd.Seq)
			}
			// Nothing more is pushed before an acknowledgement: the
			// next frame is the answer to a ping.
			rc.roundTrip(ctx, rc.frame(101, nil, &wire.Command{Type: wire.TypePing}, nil, nil), wire.TypePong)
			// Acknowledging delivers the rest, each block once.
			corr := uint64(102)
			ack := func(seq uint64) {
				rc.write(ctx, rc.recipient(corr, q, &wire.Command{Type: wire.TypeAck, Seq: seq}))
				corr++
			}
			for _, seq := range seqs {
				ack(seq)
			}
			got := want
			for got < 20 {
				f, cmd := rc.read(ctx)
				switch {
				case cmd.Type == wire.TypeOK:
				case f.CorrID == 0 && cmd.Type == wire.TypeBlock:
					if b := q.open(t, cmd.Block); b[0] != byte(got) {
						t.Fatalf("delivery %d carried block %d", got, b[0])
					}
					got++
					ack(cmd.Seq)
				default:
					t.Fatalf("unexpected %v (code %v)", cmd.Type, cmd.Code)
				}
			}
		})
	}
}
