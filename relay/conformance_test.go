package relay

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// rawQueue is a queue created over a raw connection, with every key.
type rawQueue struct {
	rid, sid           []byte
	auth, deliv        *ecdh.PrivateKey
	relayRcp, relaySnd *ecdh.PublicKey
	sender             *ecdh.PrivateKey // set once secured
}

func newKey(t testing.TB) *ecdh.PrivateKey {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (rc *rawConn) create(ctx context.Context, corr uint64) *rawQueue {
	rc.t.Helper()
	q := &rawQueue{auth: newKey(rc.t), deliv: newKey(rc.t)}
	cmd := &wire.Command{Type: wire.TypeCreate}
	copy(cmd.RecipientKey[:], q.auth.PublicKey().Bytes())
	copy(cmd.DeliveryKey[:], q.deliv.PublicKey().Bytes())
	rc.write(ctx, rc.frame(corr, nil, cmd, nil, nil))
	f, resp := rc.read(ctx)
	if resp.Type != wire.TypeIDs || f.CorrID != corr {
		rc.t.Fatalf("create: %v (code %v)", resp.Type, resp.Code)
	}
	q.rid, q.sid = bytes.Clone(resp.RecipientID[:]), bytes.Clone(resp.SenderID[:])
	var err error
	if q.relayRcp, err = ecdh.X25519().NewPublicKey(resp.RelayRecipientKey[:]); err != nil {
		rc.t.Fatal(err)
	}
	if q.relaySnd, err = ecdh.X25519().NewPublicKey(resp.RelaySenderKey[:]); err != nil {
		rc.t.Fatal(err)
	}
	return q
}

// recipient builds a recipient command frame for q.
func (rc *rawConn) recipient(corr uint64, q *rawQueue, cmd *wire.Command) *wire.Frame {
	return rc.frame(corr, q.rid, cmd, q.auth, q.relayRcp)
}

func (rc *rawConn) sendBlock(corr uint64, q *rawQueue, payload []byte) *wire.Frame {
	rc.t.Helper()
	blk, err := wire.Pad(payload, int(rc.hello.BlockSize))
	if err != nil {
		rc.t.Fatal(err)
	}
	cmd := &wire.Command{Type: wire.TypeSend, Block: blk}
	if q.sender == nil {
		return rc.frame(corr, q.sid, cmd, nil, nil)
	}
	return rc.frame(corr, q.sid, cmd, q.sender, q.relaySnd)
}

func (rc *rawConn) expect(ctx context.Context, corr uint64, typ wire.Type) wire.Command {
	rc.t.Helper()
	f, cmd := rc.read(ctx)
	if cmd.Type != typ || f.CorrID != corr {
		rc.t.Fatalf("response %v (code %v) corr %d, want %v corr %d", cmd.Type, cmd.Code, f.CorrID, typ, corr)
	}
	return cmd
}

func (rc *rawConn) roundTrip(ctx context.Context, f *wire.Frame, typ wire.Type) wire.Command {
	rc.t.Helper()
	rc.write(ctx, f)
	return rc.expect(ctx, f.CorrID, typ)
}

func (q *rawQueue) open(t testing.TB, sealed []byte) []byte {
	t.Helper()
	aead, err := wire.DeliveryAEAD(q.deliv, q.relayRcp)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := wire.Open(aead, q.rid, sealed)
	if err != nil {
		t.Fatalf("open delivered block: %v", err)
	}
	p, err := wire.Unpad(blk)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestConformance runs every command and checks every response.
func TestConformance(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{})
	defer r.stop()
	a := dialRaw(t, ctx, r.addr)
	defer a.close()
	b := dialRaw(t, ctx, r.addr)
	defer b.close()

	if a.hello.MinVersion != wire.Version || a.hello.MaxVersion != wire.Version || a.hello.BlockSize != wire.DefaultBlockSize {
		t.Fatalf("hello = %+v", a.hello)
	}
	a.roundTrip(ctx, a.frame(1, nil, &wire.Command{Type: wire.TypePing}, nil, nil), wire.TypePong)

	q := a.create(ctx, 2)
	if bytes.Equal(q.rid, q.sid) || bytes.Equal(q.relayRcp.Bytes(), q.relaySnd.Bytes()) {
		t.Fatal("recipient and sender sides share an ID or a relay key")
	}

	// Unsecured queue: an unauthenticated send is accepted, an
	// authenticated one is not.
	b.roundTrip(ctx, b.sendBlock(1, q, []byte("first")), wire.TypeOK)
	q.sender = newKey(t)
	b.write(ctx, b.sendBlock(2, q, []byte("early")))
	b.expectError(ctx, 2, wire.CodeAuth)

	// Secure; again with the same key is fine; another key is refused.
	sec := &wire.Command{Type: wire.TypeSecure}
	copy(sec.SenderKey[:], q.sender.PublicKey().Bytes())
	a.roundTrip(ctx, a.recipient(3, q, sec), wire.TypeOK)
	a.roundTrip(ctx, a.recipient(4, q, sec), wire.TypeOK)
	other := &wire.Command{Type: wire.TypeSecure}
	copy(other.SenderKey[:], newKey(t).PublicKey().Bytes())
	a.write(ctx, a.recipient(5, q, other))
	a.expectError(ctx, 5, wire.CodeAuth)

	// Secured: unauthenticated send refused, authenticated accepted.
	sk := q.sender
	q.sender = nil
	b.write(ctx, b.sendBlock(3, q, []byte("anon")))
	b.expectError(ctx, 3, wire.CodeAuth)
	q.sender = sk
	b.roundTrip(ctx, b.sendBlock(4, q, []byte("second")), wire.TypeOK)

	// Get returns the oldest block; ack deletes it; acking twice fails.
	got := a.roundTrip(ctx, a.recipient(6, q, &wire.Command{Type: wire.TypeGet}), wire.TypeBlock)
	if p := q.open(t, got.Block); string(p) != "first" {
		t.Fatalf("get = %q", p)
	}
	a.roundTrip(ctx, a.recipient(7, q, &wire.Command{Type: wire.TypeAck, Seq: got.Seq}), wire.TypeOK)
	a.write(ctx, a.recipient(8, q, &wire.Command{Type: wire.TypeAck, Seq: got.Seq}))
	a.expectError(ctx, 8, wire.CodeNoBlock)

	// Subscribe: ok, then the waiting block is pushed (corr_id 0).
	a.roundTrip(ctx, a.recipient(9, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	push := a.expect(ctx, 0, wire.TypeBlock)
	if p := q.open(t, push.Block); string(p) != "second" {
		t.Fatalf("pushed %q", p)
	}
	a.roundTrip(ctx, a.recipient(10, q, &wire.Command{Type: wire.TypeAck, Seq: push.Seq}), wire.TypeOK)
	// Live: a new block is pushed as soon as it is stored.
	b.roundTrip(ctx, b.sendBlock(5, q, []byte("live")), wire.TypeOK)
	push = a.expect(ctx, 0, wire.TypeBlock)
	if p := q.open(t, push.Block); string(p) != "live" {
		t.Fatalf("pushed %q", p)
	}
	a.roundTrip(ctx, a.recipient(11, q, &wire.Command{Type: wire.TypeAck, Seq: push.Seq}), wire.TypeOK)
	a.write(ctx, a.recipient(12, q, &wire.Command{Type: wire.TypeGet}))
	a.expectError(ctx, 12, wire.CodeNoBlock)

	// A subscription from another connection ends this one with a notice.
	c := dialRaw(t, ctx, r.addr)
	defer c.close()
	c.roundTrip(ctx, c.recipient(1, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	f, end := a.read(ctx)
	if end.Type != wire.TypeEnd || f.CorrID != 0 || !bytes.Equal(f.EntityID, q.rid) {
		t.Fatalf("old subscriber got %v, want end", end.Type)
	}

	// Delete: ok; the subscriber is told; the queue is gone for both sides.
	a.roundTrip(ctx, a.recipient(13, q, &wire.Command{Type: wire.TypeDelete}), wire.TypeOK)
	f, end = c.read(ctx)
	if end.Type != wire.TypeEnd || !bytes.Equal(f.EntityID, q.rid) {
		t.Fatalf("subscriber got %v after delete, want end", end.Type)
	}
	a.write(ctx, a.recipient(14, q, &wire.Command{Type: wire.TypeGet}))
	a.expectError(ctx, 14, wire.CodeUnknownQueue)
	b.write(ctx, b.sendBlock(6, q, []byte("late")))
	b.expectError(ctx, 6, wire.CodeUnknownQueue)
}

// TestClientLibrary runs every client method against a relay.
func TestClientLibrary(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{})
	defer r.stop()
	rcp := dial(t, ctx, r.addr)
	defer rcp.Close()
	snd := dial(t, ctx, r.addr)
	defer snd.Close()

	if err := rcp.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcp.MaxPayload(); got != wire.DefaultBlockSize-wire.PadHeaderSize {
		t.Fatalf("MaxPayload = %d", got)
	}
	q, err := rcp.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sq := q.SenderQueue()
	sq.AuthKey, _ = client.GenerateKey()
	if err := rcp.Secure(ctx, q, sq.AuthKey.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(ctx, &sq, make([]byte, snd.MaxPayload()+1)); err == nil {
		t.Fatal("oversized payload sent")
	}
	if err := snd.Send(ctx, &sq, []byte("polled")); err != nil {
		t.Fatal(err)
	}
	d, err := rcp.Get(ctx, q)
	if err != nil || string(d.Payload) != "polled" {
		t.Fatalf("Get = %q, %v", d.Payload, err)
	}
	if err := rcp.Ack(ctx, q, d.Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := rcp.Get(ctx, q); !isErr(err, client.ErrNoBlock) {
		t.Fatalf("Get on empty queue: %v", err)
	}
	if err := rcp.Subscribe(ctx, q); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := snd.Send(ctx, &sq, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[byte]bool)
	for len(seen) < 100 {
		select {
		case d := <-rcp.Deliveries():
			seen[d.Payload[0]] = true
			if err := rcp.Ack(ctx, q, d.Seq); err != nil && !isErr(err, client.ErrNoBlock) {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("received %d of 100", len(seen))
		}
	}
	if err := rcp.Delete(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(ctx, &sq, []byte("gone")); !isErr(err, client.ErrUnknownQueue) {
		t.Fatalf("send to deleted queue: %v", err)
	}
}

// TestClientReconnects: the relay drops every connection; the client
// reconnects and resubscribes by itself, and delivery resumes.
func TestClientReconnects(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{IdleTimeout: 300 * time.Millisecond})
	defer r.stop()
	rcp, err := client.Dial(ctx, r.addr, &client.Options{MinBackoff: 10 * time.Millisecond, PingInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer rcp.Close()
	q, err := rcp.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcp.Subscribe(ctx, q); err != nil {
		t.Fatal(err)
	}
	// No pings: the relay's idle timeout closes the connection.
	time.Sleep(time.Second)
	snd := dial(t, ctx, r.addr)
	defer snd.Close()
	sq := q.SenderQueue()
	if err := snd.Send(ctx, &sq, []byte("after reconnect")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-rcp.Deliveries():
		if string(d.Payload) != "after reconnect" {
			t.Fatalf("got %q", d.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no delivery after reconnect")
	}
}

// TestWrongFingerprintRefused: a relay whose key does not match the
// fingerprint in the address is refused during the TLS handshake.
func TestWrongFingerprintRefused(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{})
	defer r.stop()
	other := startRelay(t, Limits{})
	defer other.stop()
	_, hostport, _ := wire.ParseAddress(r.addr)
	forged := other.addr[:strings.Index(other.addr, "@")+1] + hostport
	if _, err := client.Dial(ctx, forged, nil); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("Dial with another relay's fingerprint: %v", err)
	}
}
