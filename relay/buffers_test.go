package relay

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// TestPayloadsSurviveBufferReuse: the relay reads every frame into a
// pooled buffer that the next frame reuses, so whatever outlives a frame
// (a payload kept by memstore or waiting for delivery, the entity of a
// response) must be copied out. A sender pipelines many sends without
// waiting; every response carries its own corr_id and the sender ID, and
// the recipient is delivered every payload intact, in order.
func TestPayloadsSurviveBufferReuse(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	secureRaw(t, ctx, rc, 2, q)
	rc.roundTrip(ctx, rc.recipient(3, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	snd := dialRaw(t, ctx, r.addr)
	defer snd.close()

	const n = 50
	payload := func(i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("payload %03d;", i)), 1+i%7)
	}
	for i := range n {
		snd.write(ctx, snd.sendBlock(uint64(1+i), q, payload(i)))
	}
	seen := make(map[uint64]bool)
	for range n {
		f, cmd := snd.read(ctx)
		if cmd.Type != wire.TypeOK || f.CorrID < 1 || f.CorrID > n || seen[f.CorrID] {
			t.Fatalf("response %v (code %v) corr %d", cmd.Type, cmd.Code, f.CorrID)
		}
		if !bytes.Equal(f.EntityID, q.sid) {
			t.Fatalf("response to %d names entity %x, want the sender ID", f.CorrID, f.EntityID)
		}
		seen[f.CorrID] = true
	}
	got := make(map[string]int)
	for range n {
		push := rc.expect(ctx, 0, wire.TypeBlock)
		got[string(q.open(t, push.Block))]++
	}
	for i := range n {
		if got[string(payload(i))] != 1 {
			t.Fatalf("payload %d delivered %d times", i, got[string(payload(i))])
		}
	}
	by.served(t, ctx)
}
