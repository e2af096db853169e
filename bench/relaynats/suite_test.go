package relaynats

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/store/memstore"
	"golang.org/x/sys/cpu"
)

// TestTLSSuiteMatchesFloor checks that BenchmarkBlockFloor prices the
// cipher the relay really negotiates: a TLS 1.3 handshake with a relay,
// configured as relay/client configures it, must pick
// TLS_AES_128_GCM_SHA256 on a CPU with AES and carry-less multiply
// instructions (Go's TLS 1.3 preference there), ChaCha20-Poly1305
// elsewhere — and the floor models the former.
func TestTLSSuiteMatchesFloor(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New(memstore.Options{})
	defer st.Close()
	srv, err := relay.NewServer(relay.Config{Key: key, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { srv.Serve(sctx, ln) })

	d := tls.Dialer{Config: &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"http/1.1"},
		// The relay is pinned by fingerprint in relay/client; this test
		// only reads the negotiated parameters.
		InsecureSkipVerify: true, //nolint:gosec
	}}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cs := c.(*tls.Conn).ConnectionState()
	if cs.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %s, want TLS 1.3", tls.VersionName(cs.Version))
	}
	want := uint16(tls.TLS_CHACHA20_POLY1305_SHA256)
	if hasAESGCM() {
		want = tls.TLS_AES_128_GCM_SHA256
	}
	if cs.CipherSuite != want {
		t.Fatalf("negotiated %s, want %s", tls.CipherSuiteName(cs.CipherSuite), tls.CipherSuiteName(want))
	}
	t.Logf("relay TLS: %s, %s, key exchange %v", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID)
}

// hasAESGCM mirrors crypto/tls's test for AES-GCM hardware support.
func hasAESGCM() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	}
	return false
}
