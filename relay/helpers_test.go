package relay

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// testRelay is a relay on a loopback port, stopped by t.Cleanup... but
// stopped explicitly by the returned stop function so leakcheck sees it.
type testRelay struct {
	srv   *Server
	addr  string
	store store.Store
	stop  func()

	key    ed25519.PrivateKey
	limits Limits
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startRelay(t testing.TB, limits Limits) *testRelay {
	t.Helper()
	return startRelayOn(t, memstore.New(memstore.Options{}), limits)
}

// startRelayWith serves an existing store with a fresh key; stop does not
// close the store.
func startRelayWith(t testing.TB, st store.Store) *testRelay {
	t.Helper()
	return startRelayOn(t, nopClose{st}, Limits{})
}

type nopClose struct{ store.Store }

func (nopClose) Close() error { return nil }

func startRelayOn(t testing.TB, st store.Store, limits Limits) *testRelay {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRelay{store: st, key: key, limits: limits}
	tr.serve(t, "127.0.0.1:0")
	var once sync.Once
	tr.stop = func() {
		once.Do(func() {
			tr.cancel()
			tr.wg.Wait()
			st.Close()
		})
	}
	return tr
}

func (tr *testRelay) serve(t testing.TB, listen string) {
	t.Helper()
	srv, err := NewServer(Config{Key: tr.key, Store: tr.store, Limits: tr.limits})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	tr.srv, tr.cancel = srv, cancel
	tr.addr = srv.Address(ln.Addr().String())
}

// restart stops the relay, closing every connection, and serves the same
// key and store again on the same address.
func (tr *testRelay) restart(t testing.TB) {
	t.Helper()
	tr.cancel()
	tr.wg.Wait()
	_, hostport, _ := wire.ParseAddress(tr.addr)
	tr.serve(t, hostport)
}

func dial(t testing.TB, ctx context.Context, addr string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, addr, &client.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

// rawConn speaks the wire protocol directly, to send what the client
// library never would.
type rawConn struct {
	t        testing.TB
	ws       *websocket.Conn
	exporter []byte
	hello    wire.Command
}

func dialRaw(t testing.TB, ctx context.Context, addr string) *rawConn {
	t.Helper()
	_, hostport, err := wire.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := tryDialRaw(ctx, hostport)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	rc.t = t
	f, cmd := rc.read(ctx)
	if f.CorrID != 0 || cmd.Type != wire.TypeHello {
		t.Fatalf("first frame %v, want hello", cmd.Type)
	}
	rc.hello = cmd
	return rc
}

func tryDialRaw(ctx context.Context, hostport string) (*rawConn, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	tr := &httpTransport{tlsConf: tlsConf}
	ws, resp, err := websocket.Dial(ctx, "wss://"+hostport+wire.WebSocketPath, &websocket.DialOptions{HTTPClient: tr.client()})
	tr.close()
	if err != nil {
		return nil, err
	}
	exp, err := resp.TLS.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterLength)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	ws.SetReadLimit(1 << 21)
	return &rawConn{ws: ws, exporter: exp}, nil
}

func (rc *rawConn) close() { rc.ws.CloseNow() }

func (rc *rawConn) writeBytes(ctx context.Context, b []byte) {
	rc.t.Helper()
	if err := rc.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

func (rc *rawConn) write(ctx context.Context, f *wire.Frame) {
	rc.t.Helper()
	b, err := f.Marshal()
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.writeBytes(ctx, b)
}

func (rc *rawConn) read(ctx context.Context) (wire.Frame, wire.Command) {
	rc.t.Helper()
	_, data, err := rc.ws.Read(ctx)
	if err != nil {
		rc.t.Fatalf("raw read: %v", err)
	}
	f, err := wire.ParseFrame(data)
	if err != nil {
		rc.t.Fatalf("raw read: %v", err)
	}
	cmd, err := wire.ParseCommand(f.Command)
	if err != nil {
		rc.t.Fatalf("raw read: %v", err)
	}
	return f, cmd
}

// command builds a frame for cmd, authenticated with own/relay if given.
func (rc *rawConn) frame(corr uint64, entity []byte, cmd *wire.Command, own *ecdh.PrivateKey, relay *ecdh.PublicKey) *wire.Frame {
	rc.t.Helper()
	body, err := cmd.Marshal()
	if err != nil {
		rc.t.Fatal(err)
	}
	f := &wire.Frame{Version: wire.Version, CorrID: corr, EntityID: entity, Command: body}
	if own != nil {
		key, err := wire.AuthKey(own, relay, rc.exporter)
		if err != nil {
			rc.t.Fatal(err)
		}
		signed, _ := f.Signed()
		f.Authenticator = wire.Authenticate(&key, signed)
	}
	return f
}

// expectError reads the next response and checks its error code.
func (rc *rawConn) expectError(ctx context.Context, corr uint64, code wire.Code) {
	rc.t.Helper()
	f, cmd := rc.read(ctx)
	if cmd.Type != wire.TypeError || cmd.Code != code {
		rc.t.Fatalf("response %v code %v, want error %v", cmd.Type, cmd.Code, code)
	}
	if f.CorrID != corr {
		rc.t.Fatalf("response corr_id %d, want %d", f.CorrID, corr)
	}
}

func isErr(err, target error) bool { return errorsIs(err, target) }

var errorsIs = errors.Is
