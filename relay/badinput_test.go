package relay

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// bystander is a well-behaved client; served checks that the relay still
// serves it a full round trip while a bad client is connected.
type bystander struct {
	c *client.Client
	q *client.RecipientQueue
}

func newBystander(t testing.TB, ctx context.Context, addr string) *bystander {
	t.Helper()
	c := dial(t, ctx, addr)
	q, err := c.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &bystander{c: c, q: q}
}

func (b *bystander) served(t testing.TB, ctx context.Context) {
	t.Helper()
	sq := b.q.SenderQueue()
	if err := b.c.Send(ctx, &sq, []byte("still served")); err != nil {
		t.Fatalf("bystander send: %v", err)
	}
	d, err := b.c.Get(ctx, b.q)
	if err != nil || string(d.Payload) != "still served" {
		t.Fatalf("bystander get: %q, %v", d.Payload, err)
	}
	if err := b.c.Ack(ctx, b.q, d.Seq); err != nil {
		t.Fatalf("bystander ack: %v", err)
	}
}

// badSetup starts a relay, a bystander and a raw attacker connection with
// one queue of its own.
func badSetup(t *testing.T, limits Limits) (context.Context, *testRelay, *bystander, *rawConn, *rawQueue) {
	ctx := testCtx(t)
	r := startRelay(t, limits)
	by := newBystander(t, ctx, r.addr)
	rc := dialRaw(t, ctx, r.addr)
	q := rc.create(ctx, 1)
	t.Cleanup(func() {})
	return ctx, r, by, rc, q
}

func teardown(r *testRelay, by *bystander, rc *rawConn) {
	rc.close()
	by.c.Close()
	r.stop()
}

func TestBadAuthenticator(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	f := rc.recipient(2, q, &wire.Command{Type: wire.TypeGet})
	f.Authenticator[0] ^= 1
	rc.write(ctx, f)
	rc.expectError(ctx, 2, wire.CodeAuth)
	f.Authenticator = nil
	f.CorrID = 3
	rc.write(ctx, f)
	rc.expectError(ctx, 3, wire.CodeAuth)
	by.served(t, ctx)
}

// TestFailedAuthLeavesReplayGuard: a command that fails authentication
// does not advance the connection's corr_id guard, so the genuine command
// with the same corr_id is still accepted.
func TestFailedAuthLeavesReplayGuard(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	forged := rc.recipient(100, q, &wire.Command{Type: wire.TypeSubscribe})
	forged.Authenticator[5] ^= 0x80
	rc.write(ctx, forged)
	rc.expectError(ctx, 100, wire.CodeAuth)
	rc.roundTrip(ctx, rc.recipient(100, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	by.served(t, ctx)
}

func TestUnknownQueue(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	ghost := *q
	ghost.rid = bytes.Repeat([]byte{0x42}, wire.IDSize)
	rc.write(ctx, rc.recipient(2, &ghost, &wire.Command{Type: wire.TypeSubscribe}))
	rc.expectError(ctx, 2, wire.CodeUnknownQueue)
	ghost.sid = ghost.rid
	rc.write(ctx, rc.sendBlock(3, &ghost, []byte("x")))
	rc.expectError(ctx, 3, wire.CodeUnknownQueue)
	rc.write(ctx, rc.frame(4, []byte{1, 2, 3}, &wire.Command{Type: wire.TypeGet}, nil, nil))
	rc.expectError(ctx, 4, wire.CodeUnknownQueue)
	by.served(t, ctx)
}

// TestWrongKey: a command authenticated with a key other than the queue's,
// and a recipient command addressed by the sender ID, are both refused.
func TestWrongKey(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	wrong := *q
	wrong.auth = newKey(t)
	rc.write(ctx, rc.recipient(2, &wrong, &wire.Command{Type: wire.TypeDelete}))
	rc.expectError(ctx, 2, wire.CodeAuth)
	// The sender's key does not authenticate recipient commands.
	q.sender = newKey(t)
	sec := &wire.Command{Type: wire.TypeSecure}
	copy(sec.SenderKey[:], q.sender.PublicKey().Bytes())
	rc.roundTrip(ctx, rc.recipient(3, q, sec), wire.TypeOK)
	rc.write(ctx, rc.frame(4, q.rid, &wire.Command{Type: wire.TypeDelete}, q.sender, q.relayRcp))
	rc.expectError(ctx, 4, wire.CodeAuth)
	// A recipient command by sender ID names no recipient queue.
	rc.write(ctx, rc.frame(5, q.sid, &wire.Command{Type: wire.TypeDelete}, q.auth, q.relayRcp))
	rc.expectError(ctx, 5, wire.CodeUnknownQueue)
	// The queue is intact.
	rc.write(ctx, rc.recipient(6, q, &wire.Command{Type: wire.TypeGet}))
	rc.expectError(ctx, 6, wire.CodeNoBlock)
	by.served(t, ctx)
}

func TestUnknownCommand(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, _ := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	rc.write(ctx, &wire.Frame{Version: wire.Version, CorrID: 2, Command: []byte{0x7f, 1, 2}})
	rc.expectError(ctx, 2, wire.CodeUnknownCommand)
	// The connection survives an unknown command.
	rc.roundTrip(ctx, rc.frame(3, nil, &wire.Command{Type: wire.TypePing}, nil, nil), wire.TypePong)
	by.served(t, ctx)
}

func TestOversize(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	big := &wire.Command{Type: wire.TypeSend, Block: make([]byte, wire.DefaultBlockSize+1)}
	rc.write(ctx, rc.frame(2, q.sid, big, nil, nil))
	rc.expectError(ctx, 2, wire.CodeTooLarge)
	// Past the frame read limit the connection itself is closed.
	huge := &wire.Command{Type: wire.TypeSend, Block: make([]byte, 4*wire.DefaultBlockSize)}
	// The relay may reset the connection before the write completes.
	rc.ws.Write(ctx, websocket.MessageBinary, mustMarshal(t, rc.frame(3, q.sid, huge, nil, nil)))
	if _, _, err := rc.ws.Read(ctx); err == nil {
		t.Fatal("connection survived a frame beyond the read limit")
	}
	by.served(t, ctx)
}

// TestReplayFromAnotherSession: a command recorded on one connection,
// replayed verbatim on another, fails: its authenticator is bound to the
// first TLS session's exporter.
func TestReplayFromAnotherSession(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	recorded := rc.recipient(2, q, &wire.Command{Type: wire.TypeDelete})
	other := dialRaw(t, ctx, r.addr)
	defer other.close()
	other.write(ctx, recorded)
	other.expectError(ctx, 2, wire.CodeAuth)
	// The queue still exists, and the command works where it was made.
	rc.roundTrip(ctx, recorded, wire.TypeOK)
	by.served(t, ctx)
}

// TestReplayWithinSession: the same authenticated frame sent twice on one
// connection is refused the second time (corr_id guard).
func TestReplayWithinSession(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	f := rc.recipient(5, q, &wire.Command{Type: wire.TypeSubscribe})
	rc.roundTrip(ctx, f, wire.TypeOK)
	rc.write(ctx, f)
	rc.expectError(ctx, 5, wire.CodeAuth)
	rc.write(ctx, rc.recipient(4, q, &wire.Command{Type: wire.TypeSubscribe}))
	rc.expectError(ctx, 4, wire.CodeAuth)
	by.served(t, ctx)
}

func TestQueueFullLimit(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{MaxQueueBlocks: 3})
	defer teardown(r, by, rc)
	for i := range 3 {
		rc.roundTrip(ctx, rc.sendBlock(uint64(2+i), q, []byte{byte(i)}), wire.TypeOK)
	}
	rc.write(ctx, rc.sendBlock(5, q, []byte("one too many")))
	rc.expectError(ctx, 5, wire.CodeQueueFull)
	by.served(t, ctx)
}

func TestRateLimit(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, _ := badSetup(t, Limits{CommandsPerSecond: 5})
	defer teardown(r, by, rc)
	// The bucket holds 10; the create used one. Send 40 pings at once.
	for i := range 40 {
		rc.write(ctx, rc.frame(uint64(10+i), nil, &wire.Command{Type: wire.TypePing}, nil, nil))
	}
	limited := 0
	for range 40 {
		_, cmd := rc.read(ctx)
		if cmd.Type == wire.TypeError {
			if cmd.Code != wire.CodeRateLimited {
				t.Fatalf("error %v, want rate limited", cmd.Code)
			}
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no command was rate limited")
	}
	by.served(t, ctx)
}

func TestTooManyConnections(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, _ := badSetup(t, Limits{MaxConnections: 2})
	defer teardown(r, by, rc)
	_, hostport, _ := wire.ParseAddress(r.addr)
	extra, err := tryDialRaw(ctx, hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.close()
	extra.t = t
	extra.expectError(ctx, 0, wire.CodeTooManyConnection)
	if _, err := client.Dial(ctx, r.addr, nil); !errors.Is(err, client.ErrTooManyConnections) {
		t.Fatalf("Dial over the limit: %v", err)
	}
	by.served(t, ctx)
}

func TestBlockExpiry(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{BlockTTL: 200 * time.Millisecond, ExpiryInterval: 20 * time.Millisecond})
	defer teardown(r, by, rc)
	rc.roundTrip(ctx, rc.sendBlock(2, q, []byte("short-lived")), wire.TypeOK)
	deadline := time.Now().Add(10 * time.Second)
	for corr := uint64(3); ; corr++ {
		rc.write(ctx, rc.recipient(corr, q, &wire.Command{Type: wire.TypeGet}))
		_, cmd := rc.read(ctx)
		if cmd.Type == wire.TypeError && cmd.Code == wire.CodeNoBlock {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("block never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	by.served(t, ctx)
}

// TestMalformedClosesOnlyThatConnection: broken framing gets a malformed
// error and that connection is closed; the relay and others carry on.
func TestMalformedClosesOnlyThatConnection(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	for name, data := range map[string][]byte{
		"truncated":     {wire.Version, 0, 0},
		"empty":         {},
		"trailing":      append(mustMarshal(t, rc.frame(2, nil, &wire.Command{Type: wire.TypePing}, nil, nil)), 0),
		"bad command":   mustMarshal(t, &wire.Frame{Version: wire.Version, CorrID: 2, Command: []byte{byte(wire.TypeAck), 1}}),
		"response type": mustMarshal(t, rc.frame(2, nil, &wire.Command{Type: wire.TypeOK}, nil, nil)),
	} {
		t.Run(name, func(t *testing.T) {
			bad := dialRaw(t, ctx, r.addr)
			defer bad.close()
			bad.writeBytes(ctx, data)
			_, cmd := bad.read(ctx)
			if cmd.Type != wire.TypeError || cmd.Code != wire.CodeMalformed {
				t.Fatalf("got %v %v, want malformed", cmd.Type, cmd.Code)
			}
			if _, _, err := bad.ws.Read(ctx); err == nil {
				t.Fatal("connection not closed")
			}
		})
	}
	rc.roundTrip(ctx, rc.recipient(3, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	by.served(t, ctx)
}

func TestVersionRefused(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, _ := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	f := mustMarshal(t, rc.frame(2, nil, &wire.Command{Type: wire.TypePing}, nil, nil))
	f[0] = wire.Version + 1
	rc.writeBytes(ctx, f)
	rc.expectError(ctx, 0, wire.CodeVersion)
	by.served(t, ctx)
}

// failingStore fails every Append, to check the internal error.
type failingStore struct{ store.Store }

func (failingStore) Append(context.Context, store.ID, []byte, time.Time, int) (uint64, error) {
	return 0, errors.New("disk on fire")
}

func TestInternalError(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	// A second server over the same store, failing appends.
	srv := startRelayWith(t, failingStore{r.store})
	defer srv.stop()
	bad := dialRaw(t, ctx, srv.addr)
	defer bad.close()
	bad.write(ctx, bad.sendBlock(1, q, []byte("x")))
	bad.expectError(ctx, 1, wire.CodeInternal)
	by.served(t, ctx)
	_ = rc
}

// TestSlowSubscriberDoesNotStallOthers: a subscriber that never reads
// does not block the sender or anyone else.
func TestSlowSubscriberDoesNotStallOthers(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{Window: 8})
	defer teardown(r, by, rc)
	rc.roundTrip(ctx, rc.recipient(2, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	// rc now never reads again.
	snd := dialRaw(t, ctx, r.addr)
	defer snd.close()
	for i := range 200 {
		snd.roundTrip(ctx, snd.sendBlock(uint64(1+i), q, []byte{byte(i)}), wire.TypeOK)
	}
	by.served(t, ctx)
}

func mustMarshal(t testing.TB, f *wire.Frame) []byte {
	t.Helper()
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
