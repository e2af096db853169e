package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// Review of this session's hot-path changes (3c92883 payload stored and
// padded at delivery; 21a27d4 pooled frame buffers and watchdogs;
// 50a1cd8 MAC without the padding; 9001ca2/4911e74/121074b client
// buffers): tests written as an attacker would probe them.

// review2Payload is a payload that names its queue, sender and index, of a
// length that varies from 0 to the maximum, so that a payload showing up
// in the wrong queue, truncated, or overwritten by another is noticed.
func review2Payload(queue, sender, i, max int) []byte {
	if i%11 == 0 {
		return nil // empty payload: valid, and must round-trip
	}
	n := 16 + (i*977+sender*131+queue*17)%(max-16)
	if i%13 == 0 {
		n = max
	}
	p := make([]byte, n)
	for j := 0; j+8 <= n; j += 8 {
		binary.BigEndian.PutUint64(p[j:], uint64(queue)<<48|uint64(sender)<<40|uint64(i)<<16|uint64(j/8&0xffff))
	}
	p[n-1] = byte(queue*7 + sender*3 + i)
	return p
}

// TestReview2ConcurrentQueuesIntact: several sender connections pipeline
// sends of distinct payloads into several queues at once (the relay reads
// each frame into a pooled buffer reused by the next, and builds each
// delivery in a pooled buffer); one recipient connection is subscribed to
// every queue. Every payload arrives in its own queue, intact, exactly
// once, under the seq the store holds it at; the stored values are the
// payloads (no padding, no bytes of another frame) after every sender
// frame buffer has been reused many times over.
func TestReview2ConcurrentQueuesIntact(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, _ := badSetup(t, Limits{CommandsPerSecond: 1 << 20})
	defer teardown(r, by, rc)
	const queues, senders, perSender = 4, 4, 12 // 48 per queue: within one window
	maxPayload := int(rc.hello.BlockSize) - wire.PadHeaderSize
	qs := make([]*rawQueue, queues)
	corr := uint64(10)
	for i := range qs {
		qs[i] = rc.create(ctx, corr)
		corr++
		rc.roundTrip(ctx, rc.recipient(corr, qs[i], &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
		corr++
	}
	snds := make([]*rawConn, senders)
	for i := range snds {
		snds[i] = dialRaw(t, ctx, r.addr)
		defer snds[i].close()
	}
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s, snd := range snds {
		wg.Go(func() {
			n := 0
			for i := range perSender {
				for q := range queues {
					n++
					b, err := snd.sendBlock(uint64(n), qs[q], review2Payload(q, s, i, maxPayload)).Marshal()
					if err != nil {
						errs <- err
						return
					}
					if err := snd.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
						errs <- err
						return
					}
				}
			}
			for range n {
				_, data, err := snd.ws.Read(ctx)
				if err != nil {
					errs <- err
					return
				}
				f, err := wire.ParseFrame(data)
				if err != nil {
					errs <- err
					return
				}
				cmd, err := wire.ParseCommand(f.Command)
				if err != nil || cmd.Type != wire.TypeOK {
					errs <- fmt.Errorf("sender %d: response %v (code %v), %v", s, cmd.Type, cmd.Code, err)
					return
				}
			}
		})
	}
	// The recipient reads every push while the senders run.
	type key struct{ q, s, i int }
	want := make(map[string]key)
	for q := range queues {
		for s := range senders {
			for i := range perSender {
				p := string(review2Payload(q, s, i, maxPayload))
				if p != "" {
					want[fmt.Sprintf("%d/%s", q, p)] = key{q, s, i}
				}
			}
		}
	}
	got := make(map[string]int)
	seqOf := make(map[int]map[uint64][]byte) // queue → seq → payload delivered
	empties := make(map[int]int)
	qIndex := func(entity []byte) int {
		for i, q := range qs {
			if bytes.Equal(entity, q.rid) {
				return i
			}
		}
		return -1
	}
	for range queues * senders * perSender {
		f, cmd := rc.read(ctx)
		if cmd.Type != wire.TypeBlock || f.CorrID != 0 {
			t.Fatalf("recipient: %v (code %v) corr %d, want a pushed block", cmd.Type, cmd.Code, f.CorrID)
		}
		if len(cmd.Block) != int(rc.hello.BlockSize)+wire.SealedOverhead {
			t.Fatalf("pushed sealed block of %d bytes, want %d", len(cmd.Block), int(rc.hello.BlockSize)+wire.SealedOverhead)
		}
		q := qIndex(f.EntityID)
		if q < 0 {
			t.Fatalf("push names entity %x, no queue of ours", f.EntityID)
		}
		p := qs[q].open(t, cmd.Block) // fails if sealed for another queue
		if seqOf[q] == nil {
			seqOf[q] = make(map[uint64][]byte)
		}
		if _, dup := seqOf[q][cmd.Seq]; dup {
			t.Fatalf("queue %d: seq %d pushed twice", q, cmd.Seq)
		}
		seqOf[q][cmd.Seq] = p
		if len(p) == 0 {
			empties[q]++
			continue
		}
		k := fmt.Sprintf("%d/%s", q, p)
		if _, ok := want[k]; !ok {
			t.Fatalf("queue %d: delivered a payload of %d bytes that was not sent to it (corrupted or another queue's)", q, len(p))
		}
		got[k]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k, v := range want {
		if got[k] != 1 {
			t.Fatalf("queue %d sender %d payload %d delivered %d times", v.q, v.s, v.i, got[k])
		}
	}
	for q := range queues {
		if wantEmpty := senders * ((perSender + 10) / 11); empties[q] != wantEmpty {
			t.Fatalf("queue %d: %d empty payloads delivered, want %d", q, empties[q], wantEmpty)
		}
	}
	// What the store holds, per seq, is exactly the payload delivered
	// under that seq.
	br, ok := r.store.(blockRanger)
	if !ok {
		t.Fatal("test store offers no Blocks")
	}
	for q, rq := range qs {
		blocks, err := br.Blocks(ctx, store.ID(rq.rid), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(blocks) != senders*perSender {
			t.Fatalf("queue %d: %d blocks stored, want %d", q, len(blocks), senders*perSender)
		}
		for _, b := range blocks {
			if !bytes.Equal(b.Data, seqOf[q][b.Seq]) {
				t.Fatalf("queue %d seq %d: stored %d bytes differ from the %d delivered", q, b.Seq, len(b.Data), len(seqOf[q][b.Seq]))
			}
		}
	}
	by.served(t, ctx)
}

// TestReview2ClientPayloadsNotOverwritten: the client library reads every
// message into one reused buffer and opens deliveries in place; every
// Delivery.Payload it hands over must be the caller's own. All deliveries
// are kept and checked only after every one has arrived (so a later read
// reusing a buffer would show in an earlier payload), and the caller
// scribbles over each payload as soon as it has it (so a payload sharing
// memory with a later one would show too).
func TestReview2ClientPayloadsNotOverwritten(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{})
	defer r.stop()
	rcp := dial(t, ctx, r.addr)
	defer rcp.Close()
	snd := dial(t, ctx, r.addr)
	defer snd.Close()
	const queues, n = 3, 40
	max := snd.MaxPayload()
	rqs := make([]*client.RecipientQueue, queues)
	for i := range rqs {
		q, err := rcp.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := rcp.Subscribe(ctx, q); err != nil {
			t.Fatal(err)
		}
		rqs[i] = q
	}
	var wg sync.WaitGroup
	errs := make(chan error, queues)
	for qi, q := range rqs {
		wg.Go(func() {
			sq := q.SenderQueue()
			for i := range n {
				p := review2Payload(qi, 0, i, max)
				if err := snd.Send(ctx, &sq, p); err != nil {
					errs <- err
					return
				}
				clear(p) // the caller may reuse its buffer once Send returns
			}
		})
	}
	type kept struct {
		d    client.Delivery
		copy []byte
	}
	var all []kept
	for len(all) < queues*n {
		select {
		case d := <-rcp.Deliveries():
			all = append(all, kept{d, bytes.Clone(d.Payload)})
			if err := rcp.Ack(ctx, rqs[review2Index(t, rqs, d.Queue)], d.Seq); err != nil {
				t.Fatal(err)
			}
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("%d of %d deliveries", len(all), queues*n)
		}
	}
	wg.Wait()
	seen := make(map[string]bool)
	for _, k := range all {
		if !bytes.Equal(k.d.Payload, k.copy) {
			t.Fatalf("queue %x seq %d: Delivery.Payload changed after it was handed over", k.d.Queue[:4], k.d.Seq)
		}
		qi := review2Index(t, rqs, k.d.Queue)
		seen[fmt.Sprintf("%d/%x", qi, k.copy)] = true
	}
	for qi := range rqs {
		for i := range n {
			if p := review2Payload(qi, 0, i, max); !seen[fmt.Sprintf("%d/%x", qi, p)] {
				t.Fatalf("queue %d payload %d (%d bytes) never delivered intact", qi, i, len(p))
			}
		}
	}
	// Scribbling over every payload handed out changes none of the others.
	for i := range all {
		for j := range all[i].d.Payload {
			all[i].d.Payload[j] ^= 0xff
		}
	}
	for i := range all {
		for j, b := range all[i].d.Payload {
			if b != all[i].copy[j]^0xff {
				t.Fatalf("delivery %d shares memory with another delivery", i)
			}
		}
	}
}

func review2Index(t *testing.T, rqs []*client.RecipientQueue, id client.ID) int {
	t.Helper()
	for i, q := range rqs {
		if q.RecipientID == id {
			return i
		}
	}
	t.Fatalf("delivery for queue %x, not ours", id[:4])
	return -1
}

// TestReview2ExporterBindingAcrossConnections: a send and a recipient
// command recorded byte for byte on one connection, where they were
// accepted, are refused (auth) when replayed on another connection with
// the same corr_id, and the queue is left as it was: the authenticator is
// bound to the TLS session's exporter, padding shortcut or not.
func TestReview2ExporterBindingAcrossConnections(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	secureRaw(t, ctx, rc, 2, q)
	a := dialRaw(t, ctx, r.addr)
	defer a.close()
	send, err := a.sendBlock(5, q, []byte("recorded on connection a")).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	a.writeBytes(ctx, send)
	a.expect(ctx, 5, wire.TypeOK)
	get, err := rc.recipient(7, q, &wire.Command{Type: wire.TypeGet}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rc.writeBytes(ctx, get)
	blk := rc.expect(ctx, 7, wire.TypeBlock)
	ack, err := rc.recipient(8, q, &wire.Command{Type: wire.TypeAck, Seq: blk.Seq}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	before := queueState(t, ctx, r.store, q.rid)

	b := dialRaw(t, ctx, r.addr)
	defer b.close()
	b.writeBytes(ctx, send)
	b.expectError(ctx, 5, wire.CodeAuth)
	b.writeBytes(ctx, ack)
	b.expectError(ctx, 8, wire.CodeAuth)
	if after := queueState(t, ctx, r.store, q.rid); after != before {
		t.Fatalf("a replay on another connection changed the queue:\n%s\n%s", before, after)
	}
	by.served(t, ctx)
}

// TestReview2DeliveryMessagesFixedSize: every block frame leaving the
// relay (pushed or answered to get) is one WebSocket message of exactly
// wire.DeliveryFrameSize bytes, whatever the payload's length: empty, one
// byte, the maximum, and a value stored padded by an earlier version.
func TestReview2DeliveryMessagesFixedSize(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	secureRaw(t, ctx, rc, 2, q)
	bs := int(rc.hello.BlockSize)
	legacy, err := wire.Pad([]byte("legacy"), bs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Append(ctx, store.ID(q.rid), legacy, time.Now(), 100); err != nil {
		t.Fatal(err)
	}
	snd := dialRaw(t, ctx, r.addr)
	defer snd.close()
	payloads := [][]byte{{}, {0}, []byte("x"), bytes.Repeat([]byte{0xff}, bs-wire.PadHeaderSize)}
	for i, p := range payloads {
		snd.roundTrip(ctx, snd.sendBlock(uint64(1+i), q, p), wire.TypeOK)
	}
	wantLen := wire.DeliveryFrameSize(wire.IDSize, bs)
	readSized := func(what string) wire.Command {
		t.Helper()
		_, data, err := rc.ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != wantLen {
			t.Fatalf("%s: message of %d bytes, want %d", what, len(data), wantLen)
		}
		f, _ := wire.ParseFrame(data)
		cmd, err := wire.ParseCommand(f.Command)
		if err != nil || cmd.Type != wire.TypeBlock {
			t.Fatalf("%s: %v, %v", what, cmd.Type, err)
		}
		return cmd
	}
	rc.write(ctx, rc.recipient(3, q, &wire.Command{Type: wire.TypeGet}))
	if p := q.open(t, readSized("get").Block); string(p) != "legacy" {
		t.Fatalf("get: %q", p)
	}
	rc.roundTrip(ctx, rc.recipient(4, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	for i, want := range append([][]byte{[]byte("legacy")}, payloads...) {
		if p := q.open(t, readSized(fmt.Sprintf("push %d", i)).Block); !bytes.Equal(p, want) {
			t.Fatalf("push %d: %d bytes, want %d", i, len(p), len(want))
		}
	}
	by.served(t, ctx)
}

// TestReview2TricklingClientClosed: the per-message read timeout became
// one idle watchdog per connection, reset when a whole message has been
// read. A slowloris client that keeps a message arriving a fragment at a
// time, never finishing it, is closed after the idle timeout, although
// bytes keep coming; a well-behaved client is served meanwhile.
func TestReview2TricklingClientClosed(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{IdleTimeout: 500 * time.Millisecond})
	defer r.stop()
	// The bystander pings well within the idle timeout.
	bc, err := client.Dial(ctx, r.addr, &client.Options{PingInterval: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	bq, err := bc.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	by := &bystander{c: bc, q: bq}
	open := func() uint64 { return readMetrics(t, r.srv)["parley_relay_connections_open"] }
	baseline := open()
	slow := dialRaw(t, ctx, r.addr)
	defer slow.close()
	if open() <= baseline {
		t.Fatal("the trickling connection is not counted open")
	}
	w, err := slow.ws.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	frag := []byte{wire.Version, 0, 0, 0, 0, 0, 0, 0, 1}
	closed := false
	// 400 × 25 ms: 10 s, twenty idle timeouts. The client never
	// reads (a read whose context ends would close it from this side).
	for i := 0; i < 400 && !closed; i++ {
		if i == 20 {
			by.served(t, ctx) // others are served while it trickles
		}
		if _, err := w.Write(frag[:1+i%2]); err != nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
		closed = open() <= baseline
	}
	for !closed && ctx.Err() == nil { // a failed write: wait for the relay's count
		time.Sleep(10 * time.Millisecond)
		closed = open() <= baseline
	}
	if !closed {
		t.Fatal("a client trickling one unfinished message was never closed by the relay")
	}
	by.served(t, ctx)
}

// tapConn records every byte of a TCP connection, both ways, as a
// network observer sees them.
type tapConn struct {
	net.Conn
	mu      sync.Mutex
	in, out []byte // read from the client, written to it
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in = append(c.in, p[:n]...)
	c.mu.Unlock()
	return n, err
}

// Write records p before writing it, so that the bytes are in c.out
// before the client can have read them; a short write is recorded short.
func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	at := len(c.out)
	c.out = append(c.out, p...)
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	if n < len(p) {
		c.mu.Lock()
		c.out = append(c.out[:at+n], c.out[at+len(p):]...)
		c.mu.Unlock()
	}
	return n, err
}

// marks returns how many bytes have gone each way so far.
func (c *tapConn) marks() (in, out int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.in), len(c.out)
}

// records returns the TLS record lengths (RFC 8446 §5.1 TLSPlaintext
// header: type, version, uint16 length) in b, which must begin on a record
// boundary and end on one.
func review2Records(t *testing.T, b []byte) []int {
	t.Helper()
	var out []int
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("%d trailing bytes: not on a record boundary", len(b))
		}
		n := int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			t.Fatalf("record of %d bytes cut short", n)
		}
		out = append(out, n)
		b = b[5+n:]
	}
	return out
}

type tapListener struct {
	net.Listener
	conns chan *tapConn
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &tapConn{Conn: c}
	select {
	case l.conns <- tc:
	default:
	}
	return tc, nil
}

// TestReview2ObserverSeesFixedSizes: a network observer on the TCP
// connections sees, for one send (client library → relay) and for the
// delivery of that block (relay → subscribed client library), the same
// number of bytes inside TLS records whatever the payload's length:
// empty, one byte, a few kilobytes, the maximum. (How a write is cut into
// records depends on buffering and timing, not on content, so the sum of
// the records' plaintext lengths is compared: RFC 8446 §5.2, each record
// adds a one-byte content type and a 16-byte AEAD tag; Go adds no record
// padding.) Payloads stored unpadded and
// padded again at delivery (3c92883), the client's one-pass padding
// (9001ca2) and coalesced writes on both sides must all keep that.
func TestReview2ObserverSeesFixedSizes(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{Key: key, Store: memstore.New(memstore.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tapListener{ln, make(chan *tapConn, 4)}
	sctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(sctx, tl) })
	defer wg.Wait()
	defer stop()
	addr := srv.Address(ln.Addr().String())
	opts := &client.Options{PingInterval: time.Hour, MinBackoff: time.Hour}

	rcp, err := client.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rcp.Close()
	rtap := <-tl.conns
	snd, err := client.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	stap := <-tl.conns
	q, err := rcp.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcp.Subscribe(ctx, q); err != nil {
		t.Fatal(err)
	}
	sq := q.SenderQueue()
	// A first send brings nothing new: it lets one-time traffic (session
	// tickets, the first frames) pass before anything is compared.
	if err := snd.Send(ctx, &sq, []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	d := <-rcp.Deliveries()
	if err := rcp.Ack(ctx, q, d.Seq); err != nil {
		t.Fatal(err)
	}

	max := snd.MaxPayload()
	payloads := [][]byte{{}, {0}, []byte("x"), bytes.Repeat([]byte{0x5a}, 3000), bytes.Repeat([]byte{0xff}, max), make([]byte, max)}
	const recordOverhead = 1 + 16
	plain := func(recs []int) int {
		n := 0
		for _, r := range recs {
			n += r - recordOverhead
		}
		return n
	}
	type shape struct{ send, deliver int }
	var first shape
	for i, p := range payloads {
		sIn, _ := stap.marks()
		_, rOut := rtap.marks()
		if err := snd.Send(ctx, &sq, p); err != nil {
			t.Fatal(err)
		}
		var d client.Delivery
		select {
		case d = <-rcp.Deliveries():
		case <-ctx.Done():
			t.Fatal("no delivery")
		}
		if !bytes.Equal(d.Payload, p) {
			t.Fatalf("payload %d: delivered %d bytes, want %d", i, len(d.Payload), len(p))
		}
		sIn2, _ := stap.marks()
		_, rOut2 := rtap.marks()
		stap.mu.Lock()
		sendRec := review2Records(t, stap.in[sIn:sIn2])
		stap.mu.Unlock()
		rtap.mu.Lock()
		delivRec := review2Records(t, rtap.out[rOut:rOut2])
		rtap.mu.Unlock()
		sh := shape{plain(sendRec), plain(delivRec)}
		t.Logf("payload of %d bytes: send records %v, delivery records %v", len(p), sendRec, delivRec)
		if i == 0 {
			first = sh
		} else if sh != first {
			t.Fatalf("payload of %d bytes: %d bytes sent and %d delivered inside TLS, the empty payload %d and %d: sizes leak",
				len(p), sh.send, sh.deliver, first.send, first.deliver)
		}
		if err := rcp.Ack(ctx, q, d.Seq); err != nil {
			t.Fatal(err)
		}
	}
	// A send frame carries a whole block, a delivery a sealed one.
	if bs := snd.MaxPayload() + 4; first.send < bs || first.deliver < bs+40 {
		t.Fatalf("observed %d bytes sent and %d delivered, less than a block of %d", first.send, first.deliver, bs)
	}
}
