package relay

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/internal/wire"
)

// parleyBin is the parley binary built once by TestMain for the crash
// tests, which run the relay as a separate process.
var parleyBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		fmt.Fprintln(os.Stderr, "relay tests: cannot locate the source tree")
		return 1
	}
	root := filepath.Dir(filepath.Dir(file)) // relay/.. is the module root
	tmp, err := os.MkdirTemp("", "parley-relay-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay tests:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	parleyBin = filepath.Join(tmp, "parley")
	build := exec.Command("go", "build", "-o", parleyBin, "./cmd/parley")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "relay tests: building cmd/parley: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// relayProc is a `parley relay` child process.
type relayProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
}

// syncBuffer collects output and reports the first line.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan string // receives the first line once
	sent  bool
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if !b.sent && b.first != nil {
		if line, _, ok := strings.Cut(b.buf.String(), "\n"); ok {
			b.sent = true
			b.first <- line
		}
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProcB starts a non-durable relay process for a benchmark.
func startProcB(b *testing.B, ctx context.Context) *relayProc {
	return startProc(b, ctx, b.TempDir(), "127.0.0.1:0", "--durable=false")
}

func startProc(t testing.TB, ctx context.Context, dir, listen string, extra ...string) *relayProc {
	t.Helper()
	cmd := exec.Command(parleyBin, append([]string{"relay", "--listen", listen, "--data", dir}, extra...)...)
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

func (p *relayProc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// stop shuts the relay down gracefully (SIGTERM) and checks it exits 0.
func (p *relayProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("relay did not exit cleanly on SIGTERM: %v\n%s", err, p.stderr)
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-done
		t.Errorf("relay did not stop on SIGTERM")
	}
}

// TestCrashNoAckedBlockLost runs the relay as a process, sends N blocks
// from one client while another receives, SIGKILLs the relay at random
// moments and restarts it on the same data directory. Every block the
// relay acknowledged to the sender must reach the recipient (at least
// once; duplicates are counted), and the relay's address must not change.
func TestCrashNoAckedBlockLost(t *testing.T) {
	defer leakcheck.Check(t)()
	const (
		n     = 240
		kills = 4
	)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	dir := t.TempDir()
	p := startProc(t, ctx, dir, "127.0.0.1:0")
	addr := p.addr
	_, hostport, err := wire.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(hostport)
	listen := "127.0.0.1:" + port
	var pmu sync.Mutex // guards p
	defer func() {
		pmu.Lock()
		p.stop(t)
		pmu.Unlock()
	}()

	opts := &client.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, PingInterval: 2 * time.Second}
	rcp, err := client.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rcp.Close()
	snd, err := client.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	q, err := rcp.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sq := q.SenderQueue()
	sq.AuthKey, _ = client.GenerateKey()
	if err := rcp.Secure(ctx, q, sq.AuthKey.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if err := rcp.Subscribe(ctx, q); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex // guards acked, received
	acked := make(map[uint32]bool)
	received := make(map[uint32]int)
	progress := make(chan int, n)

	var wg sync.WaitGroup
	wg.Go(func() { // the recipient
		for {
			select {
			case d, ok := <-rcp.Deliveries():
				if !ok {
					return
				}
				if d.Ended || len(d.Payload) != 4 {
					continue
				}
				mu.Lock()
				received[binary.BigEndian.Uint32(d.Payload)]++
				mu.Unlock()
				// An ack lost in a crash means a duplicate, not a loss.
				rcp.Ack(ctx, q, d.Seq)
			case <-ctx.Done():
				return
			}
		}
	})
	senderDone := make(chan struct{})
	wg.Go(func() { // the sender: retry each block until acknowledged
		defer close(senderDone)
		for i := range uint32(n) {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], i)
			for snd.Send(ctx, &sq, b[:]) != nil {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			acked[i] = true
			mu.Unlock()
			progress <- int(i)
		}
	})

	// Kill at a random point within each of `kills` stretches of the run.
	for k := range kills {
		at := k*n/(kills+1) + rand.IntN(n/(kills+1))
		for sent := -1; sent < at; {
			select {
			case sent = <-progress:
			case <-ctx.Done():
				t.Fatal("sender stalled")
			}
		}
		time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
		pmu.Lock()
		p.kill(t)
		p = startProc(t, ctx, dir, listen)
		got := p.addr
		pmu.Unlock()
		if got != addr {
			t.Fatalf("address changed after SIGKILL and restart: %s, was %s", got, addr)
		}
		t.Logf("kill %d after block %d", k+1, at)
	}
	select {
	case <-senderDone:
	case <-ctx.Done():
		t.Fatal("sender did not finish")
	}

	// Wait for every acknowledged block to arrive.
	for {
		mu.Lock()
		var missing []uint32
		for i := range acked {
			if received[i] == 0 {
				missing = append(missing, i)
			}
		}
		dups := 0
		for _, c := range received {
			dups += c - 1
		}
		mu.Unlock()
		if len(missing) == 0 {
			t.Logf("%d blocks acknowledged, all delivered; %d duplicate deliveries", len(acked), dups)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d acknowledged blocks never delivered (e.g. %v)", len(missing), missing[:min(10, len(missing))])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(acked) != n {
		t.Fatalf("%d of %d blocks acknowledged", len(acked), n)
	}
	cancel()
	wg.Wait()
}
