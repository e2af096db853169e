package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/internal/leakcheck"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

var demoRelays = regexp.MustCompile(`parley: demo: relays (parley://\S+) and (parley://\S+)`)

// runDemoUntilReady runs `parley demo --no-ui` until it has printed its
// relays, and returns them and a function that stops it.
func runDemoUntilReady(t *testing.T, ctx context.Context, dir, ports string) ([]string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { // owned: stop cancels it and waits
		done <- run(ctx, []string{"demo", "--dir", dir, "--ports", ports, "--no-ui"}, strings.NewReader(""), &bytes.Buffer{}, &stderr)
	}()
	stop := func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("demo exited %d: %s", code, stderr.String())
		}
	}
	for {
		if m := demoRelays.FindStringSubmatch(stderr.String()); m != nil {
			return m[1:], stop
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("demo exited %d: %s", code, stderr.String())
		case <-ctx.Done():
			t.Fatal("demo did not start")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestDemo runs the README's main command without its UI: two relays in
// the process, a profile for the user connected to the echo bot; a second
// profile can use the demo's relays; a second run reuses everything.
func TestDemo(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	dir := t.TempDir()
	ports := freePort(t) + "," + freePort(t)

	relays, stop := runDemoUntilReady(t, ctx, dir, ports)
	// A second profile on the same machine uses the demo's relays.
	bob := filepath.Join(dir, "bob")
	opts := &agent.Options{KDF: localstore.TestKDF}
	if _, err := agent.Init(bob, []byte("pw"), "Bob", opts); err != nil {
		t.Fatal(err)
	}
	b, err := agent.Open(bob, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range relays {
		if err := b.AddRelay(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Invite(ctx, "you"); err != nil {
		t.Errorf("inviting through the demo's relays: %v", err)
	}
	b.Close()
	stop()

	// The user's profile holds Echo, connected, with both relays.
	you, err := agent.Open(filepath.Join(dir, "you"), nil, &agent.Options{AllowEmptyPassphrase: true})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := you.Contacts()
	rs, _ := you.Relays()
	you.Close()
	if err != nil || len(cs) != 1 || cs[0].Name() != "Echo" || !cs[0].Connected {
		t.Fatalf("the demo profile's contacts: %+v, %v", cs, err)
	}
	if len(rs) != 2 {
		t.Fatalf("the demo profile's relays: %+v", rs)
	}

	// A second run reuses the profiles and relays, at the same addresses.
	again, stop := runDemoUntilReady(t, ctx, dir, ports)
	stop()
	if fmt.Sprint(again) != fmt.Sprint(relays) {
		t.Errorf("second run's relays %v, first %v", again, relays)
	}
}
