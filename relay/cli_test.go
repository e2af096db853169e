package relay

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store/boltstore"
)

// startProcEnv starts `parley relay args...` with extra environment
// variables and waits for its address.
func startProcEnv(t *testing.T, ctx context.Context, env []string, args ...string) *relayProc {
	t.Helper()
	cmd := exec.Command(parleyBin, append([]string{"relay"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{first: make(chan string, 1)}
	errb := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &relayProc{cmd: cmd, stderr: errb}
	select {
	case p.addr = <-out.first:
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("relay printed no address; stderr:\n%s", errb)
	}
	if !strings.HasPrefix(p.addr, wire.Scheme) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("relay printed %q", p.addr)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRelayCommandDefaults: `parley relay` with no flags keeps its key and
// its SQLite store (the engine chosen in docs/BENCHMARKS.md) under the
// user's config directory; PARLEY_RELAY_LISTEN and PARLEY_RELAY_METRICS
// stand in for --listen and --metrics; the metrics endpoint serves the
// counts; SIGTERM exits cleanly; restarted, the address is the same.
func TestRelayCommandDefaults(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	home := t.TempDir()
	listen, metricsAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"PARLEY_RELAY_LISTEN=" + listen, "PARLEY_RELAY_METRICS=" + metricsAddr,
		"PARLEY_RELAY_DATA=",
	}
	p := startProcEnv(t, ctx, env)
	dir := filepath.Join(home, "config", "parley", "relay")
	for _, f := range []string{"relay.key", "relay.sqlite"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			p.kill(t)
			t.Fatalf("default data directory: %v", err)
		}
	}
	if !strings.HasSuffix(p.addr, "@"+listen) {
		t.Errorf("address %s does not end in the listen address %s", p.addr, listen)
	}
	c := dial(t, ctx, p.addr)
	if _, err := c.Create(ctx); err != nil {
		t.Error(err)
	}
	c.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		p.kill(t)
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tr.CloseIdleConnections()
	if !strings.Contains(string(body), "\nparley_relay_queues_created_total 1\n") {
		t.Errorf("metrics endpoint:\n%s", body)
	}
	p.stop(t)
	again := startProcEnv(t, ctx, env)
	defer again.stop(t)
	if again.addr != p.addr {
		t.Fatalf("address changed across a restart: %s, was %s", again.addr, p.addr)
	}
}

// TestRelayCommandKeepsLegacyStore: a data directory made by an earlier
// version, holding a bbolt store (relay.db), keeps being served from it.
func TestRelayCommandKeepsLegacyStore(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	dir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(dir, "relay.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	p := startProc(t, ctx, dir, "127.0.0.1:0")
	defer p.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "relay.sqlite")); err == nil {
		t.Fatal("a new SQLite store was made beside the existing bbolt store")
	}
	c := dial(t, ctx, p.addr)
	defer c.Close()
	if _, err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
}
