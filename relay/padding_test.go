package relay

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// TestNonZeroPaddingRefused: the relay stores a block's payload and pads
// it again at delivery (docs/PROTOCOL.md "Relay protocol: blocks"), so a
// send whose block is not a PaddedBlock — a non-zero byte anywhere in the
// padding, or a length beyond the block — is refused malformed, stores
// nothing, leaves the corr_id guard where it was, and the connection and
// other clients carry on.
func TestNonZeroPaddingRefused(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	secureRaw(t, ctx, rc, 2, q)
	snd := dialRaw(t, ctx, r.addr)
	defer snd.close()
	snd.roundTrip(ctx, snd.sendBlock(1, q, []byte("kept")), wire.TypeOK)
	before := queueState(t, ctx, r.store, q.rid)

	bs := int(snd.hello.BlockSize)
	payload := []byte("hello")
	type bad struct {
		name  string
		block func() []byte
	}
	var cases []bad
	for _, i := range []int{wire.PadHeaderSize + len(payload), bs / 2, bs - 1} {
		cases = append(cases, bad{"padding byte " + strconv.Itoa(i), func() []byte {
			b, _ := wire.Pad(payload, bs)
			b[i] = 0x80
			return b
		}})
	}
	cases = append(cases, bad{"length beyond the block", func() []byte {
		b, _ := wire.Pad(payload, bs)
		binary.BigEndian.PutUint32(b, uint32(bs-wire.PadHeaderSize+1))
		return b
	}}, bad{"length 2^32-1", func() []byte {
		b, _ := wire.Pad(payload, bs)
		binary.BigEndian.PutUint32(b, ^uint32(0))
		return b
	}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := &wire.Command{Type: wire.TypeSend, Block: c.block()}
			// Authenticated with the sender key and corr 2: the refusal
			// must come from the padding check, not authentication.
			snd.write(ctx, snd.frame(2, q.sid, cmd, q.sender, q.relaySnd))
			snd.expectError(ctx, 2, wire.CodeMalformed)
			if after := queueState(t, ctx, r.store, q.rid); after != before {
				t.Fatalf("store changed:\n%s\n%s", before, after)
			}
		})
	}
	// The corr_id guard did not move: corr 2 is still accepted.
	snd.roundTrip(ctx, snd.sendBlock(2, q, []byte("next")), wire.TypeOK)
	by.served(t, ctx)
}

// TestStoreHoldsPayloadDeliveryPadded: the store holds a block's payload
// only, and every delivery (pushed and answered to get) still carries a
// sealed block of exactly the block size, which opens to the payload.
func TestStoreHoldsPayloadDeliveryPadded(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	secureRaw(t, ctx, rc, 2, q)
	snd := dialRaw(t, ctx, r.addr)
	defer snd.close()
	bs := int(snd.hello.BlockSize)
	payloads := [][]byte{{}, []byte("short"), bytes.Repeat([]byte{0xa5}, bs-wire.PadHeaderSize)}
	for i, p := range payloads {
		snd.roundTrip(ctx, snd.sendBlock(uint64(1+i), q, p), wire.TypeOK)
	}
	var id store.ID
	copy(id[:], q.rid)
	blk, err := r.store.First(ctx, id)
	if err != nil || len(blk.Data) != 0 {
		t.Fatalf("stored %d bytes for an empty payload (%v), want 0", len(blk.Data), err)
	}

	got := rc.roundTrip(ctx, rc.recipient(3, q, &wire.Command{Type: wire.TypeGet}), wire.TypeBlock)
	if len(got.Block) != bs+wire.SealedOverhead {
		t.Fatalf("get: sealed block of %d bytes, want %d", len(got.Block), bs+wire.SealedOverhead)
	}
	if p := q.open(t, got.Block); len(p) != 0 {
		t.Fatalf("get: payload %q, want empty", p)
	}
	rc.roundTrip(ctx, rc.recipient(4, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	for i, want := range payloads {
		push := rc.expect(ctx, 0, wire.TypeBlock)
		if len(push.Block) != bs+wire.SealedOverhead {
			t.Fatalf("push %d: sealed block of %d bytes, want %d", i, len(push.Block), bs+wire.SealedOverhead)
		}
		if p := q.open(t, push.Block); !bytes.Equal(p, want) {
			t.Fatalf("push %d: payload of %d bytes, want %d", i, len(p), len(want))
		}
	}
}

// TestLegacyPaddedBlockDelivered: a data directory written by an earlier
// version holds padded blocks (exactly the block size); they are
// delivered as they are, beside payloads stored by this version, and
// every delivery has the block size.
func TestLegacyPaddedBlockDelivered(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	var id store.ID
	copy(id[:], q.rid)
	bs := int(rc.hello.BlockSize)
	legacy, err := wire.Pad([]byte("stored padded by an earlier version"), bs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Append(ctx, id, legacy, time.Now(), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Append(ctx, id, []byte("stored as payload"), time.Now(), 10); err != nil {
		t.Fatal(err)
	}
	got := rc.roundTrip(ctx, rc.recipient(2, q, &wire.Command{Type: wire.TypeGet}), wire.TypeBlock)
	if len(got.Block) != bs+wire.SealedOverhead {
		t.Fatalf("get: sealed block of %d bytes, want %d", len(got.Block), bs+wire.SealedOverhead)
	}
	if p := q.open(t, got.Block); string(p) != "stored padded by an earlier version" {
		t.Fatalf("get: %q", p)
	}
	rc.roundTrip(ctx, rc.recipient(3, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	for _, want := range []string{"stored padded by an earlier version", "stored as payload"} {
		push := rc.expect(ctx, 0, wire.TypeBlock)
		if len(push.Block) != bs+wire.SealedOverhead {
			t.Fatalf("push: sealed block of %d bytes, want %d", len(push.Block), bs+wire.SealedOverhead)
		}
		if p := q.open(t, push.Block); string(p) != want {
			t.Fatalf("push: %q, want %q", p, want)
		}
	}
	by.served(t, ctx)
}
