package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// TestTLSHybridKeyExchange: the relay speaks TLS 1.3 only and keeps Go's
// default hybrid post-quantum key exchange, X25519MLKEM768
// (draft-ietf-tls-ecdhe-mlkem); a TLS 1.2 client is refused.
func TestTLSHybridKeyExchange(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{})
	defer r.stop()
	_, hostport, err := wire.ParseAddress(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
	nc, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	cs := nc.(*tls.Conn).ConnectionState()
	nc.Close()
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %#x, want TLS 1.3", cs.Version)
	}
	if cs.CurveID != tls.X25519MLKEM768 {
		t.Errorf("key exchange %v, want X25519MLKEM768", cs.CurveID)
	}
	d12 := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}}
	if nc, err := d12.DialContext(ctx, "tcp", hostport); err == nil {
		nc.Close()
		t.Fatal("TLS 1.2 handshake accepted")
	}
}

// readMetrics parses WriteMetrics output into name → value, failing on
// any line that is not a HELP or TYPE comment or an unlabelled count.
func readMetrics(t *testing.T, s *Server) map[string]uint64 {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteMetrics(&buf); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]uint64)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.ContainsAny(name, "{}") || !strings.HasPrefix(name, "parley_relay_") {
			t.Fatalf("metrics line %q is not an unlabelled parley_relay_ count", line)
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[name] = v
	}
	return out
}

// TestKeepAliveHoldsIdleConnection: a client's keep-alive pings keep an
// otherwise idle connection open past the relay's idle timeout (the
// relay accepts no new connection meanwhile), and the subscription still
// delivers. TestClientReconnects is the converse (no pings: closed).
func TestKeepAliveHoldsIdleConnection(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	// A ping unanswered within PingInterval makes the client reconnect:
	// 250 ms leaves room for a loaded machine under -race (50 ms failed
	// about one run in sixteen), and the relay's idle timeout is four
	// ping intervals.
	r := startRelay(t, Limits{IdleTimeout: time.Second})
	defer r.stop()
	rcp, err := client.Dial(ctx, r.addr, &client.Options{MinBackoff: 10 * time.Millisecond, PingInterval: 250 * time.Millisecond})
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
	before := readMetrics(t, r.srv)["parley_relay_connections_total"]
	time.Sleep(3200 * time.Millisecond) // over three idle timeouts
	if after := readMetrics(t, r.srv)["parley_relay_connections_total"]; after != before {
		t.Fatalf("connections accepted went from %d to %d: the idle client reconnected", before, after)
	}
	snd := dial(t, ctx, r.addr)
	defer snd.Close()
	sq := q.SenderQueue()
	if err := snd.Send(ctx, &sq, []byte("kept alive")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-rcp.Deliveries():
		if string(d.Payload) != "kept alive" {
			t.Fatalf("got %q", d.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
}

// lockedBuffer is a log sink shared by the relay's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestInfoLogsAndMetricsHoldNoIdentifiers: at info level the relay's logs
// and its metrics never hold a queue ID, a key or the client's address,
// in any common encoding, through every command, errors and expiry; the
// metrics are counts that follow the traffic.
func TestInfoLogsAndMetricsHoldNoIdentifiers(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	st := memstore.New(memstore.Options{})
	defer st.Close()
	srv, err := NewServer(Config{
		Key: key, Store: st,
		Limits: Limits{BlockTTL: 100 * time.Millisecond, ExpiryInterval: 20 * time.Millisecond},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(sctx, ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr := srv.Address(ln.Addr().String())

	rc := dialRaw(t, ctx, addr)
	q := rc.create(ctx, 1)
	secureRaw(t, ctx, rc, 2, q)
	rc.roundTrip(ctx, rc.sendBlock(3, q, []byte("expiring")), wire.TypeOK)
	rc.write(ctx, rc.recipient(2, q, &wire.Command{Type: wire.TypeGet})) // replayed corr_id
	rc.expectError(ctx, 2, wire.CodeAuth)
	// Wait for the block to expire (an info log line).
	for !strings.Contains(logs.String(), "relay expired blocks") {
		if ctx.Err() != nil {
			t.Fatal("no expiry logged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rc.roundTrip(ctx, rc.recipient(4, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	rc.roundTrip(ctx, rc.recipient(5, q, &wire.Command{Type: wire.TypeDelete}), wire.TypeOK)
	m := readMetrics(t, srv)
	rc.close()
	stop()
	wg.Wait()

	if m["parley_relay_queues_created_total"] != 1 || m["parley_relay_blocks_sent_total"] != 1 ||
		m["parley_relay_blocks_expired_total"] != 1 || m["parley_relay_queues_deleted_total"] != 1 || m["parley_relay_errors_total"] == 0 {
		t.Errorf("metrics do not follow the traffic: %v", m)
	}
	var mbuf bytes.Buffer
	srv.WriteMetrics(&mbuf)
	text := logs.String()
	if !strings.Contains(text, "relay serving") || !strings.Contains(text, "relay stopped") {
		t.Fatalf("expected info lines missing:\n%s", text)
	}
	secrets := map[string][]byte{
		"recipient ID": q.rid, "sender ID": q.sid,
		"recipient key": q.auth.PublicKey().Bytes(), "delivery key": q.deliv.PublicKey().Bytes(),
		"sender key": q.sender.PublicKey().Bytes(), "relay queue key": q.relayRcp.Bytes(),
	}
	for _, out := range []struct{ name, text string }{{"logs", text}, {"metrics", mbuf.String()}} {
		for what, b := range secrets {
			for _, enc := range []string{hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), string(b)} {
				if strings.Contains(out.text, enc) {
					t.Errorf("%s hold the %s", out.name, what)
				}
			}
		}
		if strings.Contains(out.text, "127.0.0.1") {
			t.Errorf("%s hold the client address:\n%s", out.name, out.text)
		}
	}
}
