package storetest

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// Environment of Crash's child process.
const (
	envCrashPath  = "PARLEY_STORETEST_CRASH_PATH"
	envCrashQueue = "PARLEY_STORETEST_CRASH_QUEUE"
)

const (
	crashWriters   = 8
	crashBlockSize = 256
)

// OpenPath opens (creating if needed) a durable store kept at path.
type OpenPath func(path string) (store.Store, error)

// Crash checks a durable store's promise the hard way: a child process
// (the test binary, re-executed to run the calling test alone) appends
// blocks from several goroutines and acknowledges some, printing each seq
// only after Append (or Ack) returned; the parent SIGKILLs it at a random
// moment, reopens the store and checks that every block the child was told
// is stored is there and intact, and every block it was told is removed is
// not. Several rounds on one store, so each reopen also recovers from the
// previous kill.
//
// Call it at the top of its own test function, which must do nothing else:
// in the child, Crash runs the child's side and the test ends there.
func Crash(t *testing.T, open OpenPath) {
	if os.Getenv(envCrashPath) != "" {
		crashChild(t, open)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := open(path)
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	for round := range rounds {
		// Kill after a random number of acknowledged writes: early (in the
		// first commits), middling, or late.
		killAfter := rand.IntN([]int{5, 200, 2000}[round%3]) + 1
		r := runCrashChild(ctx, t, path, q.RecipientID, killAfter)
		t.Logf("round %d: killed after %d reports (%d appends, %d acks acknowledged)", round, killAfter, len(r.appended), len(r.acked))
		checkAfterCrash(ctx, t, open, path, q.RecipientID, r)
	}
}

// crashReport is what the child said before it died.
type crashReport struct {
	appended map[uint64]bool // Append returned this seq
	acking   map[uint64]bool // an Ack of this seq began
	acked    map[uint64]bool // the Ack returned nil
}

// runCrashChild starts the child, reads what it reports, SIGKILLs it after
// killAfter reports, and reads on until its output ends.
func runCrashChild(ctx context.Context, t *testing.T, path string, id store.ID, killAfter int) crashReport {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), envCrashPath+"="+path, envCrashQueue+"="+hex.EncodeToString(id[:]))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := crashReport{appended: map[uint64]bool{}, acking: map[uint64]bool{}, acked: map[uint64]bool{}}
	sc := bufio.NewScanner(out)
	n, killed := 0, false
	for sc.Scan() {
		kind, num, ok := strings.Cut(sc.Text(), " ")
		seq, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil {
			continue // the testing package's own output
		}
		switch kind {
		case "A":
			r.appended[seq] = true
		case "T":
			r.acking[seq] = true
		case "D":
			r.acked[seq] = true
		}
		if n++; n == killAfter {
			// The child goes on writing until the signal lands; reading on
			// collects what it acknowledged meanwhile.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", err)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("child: %v", err)
	}
	return r
}

// checkAfterCrash reopens the store and drains the queue, checking it
// against what the child reported: appended blocks are there unless an Ack
// of them had begun; acknowledged removals stay removed.
func checkAfterCrash(ctx context.Context, t *testing.T, open OpenPath, path string, id store.ID, r crashReport) {
	t.Helper()
	s, err := open(path)
	if err != nil {
		t.Fatalf("reopening after the crash: %v", err)
	}
	defer s.Close()
	present := map[uint64]bool{}
	for {
		b, err := s.First(ctx, id)
		if errors.Is(err, store.ErrNoBlock) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Data) != crashBlockSize || !strings.HasPrefix(string(b.Data), "block ") {
			t.Fatalf("block %d corrupted: %q", b.Seq, b.Data)
		}
		present[b.Seq] = true
		if err := s.Ack(ctx, id, b.Seq); err != nil {
			t.Fatal(err)
		}
	}
	for seq := range r.appended {
		if !r.acking[seq] && !present[seq] {
			t.Errorf("block %d was acknowledged as stored but is lost", seq)
		}
	}
	for seq := range r.acked {
		if present[seq] {
			t.Errorf("block %d was acknowledged as removed but is back", seq)
		}
	}
}

// crashChild is the child's side: append and ack until killed.
func crashChild(t *testing.T, open OpenPath) {
	raw, err := hex.DecodeString(os.Getenv(envCrashQueue))
	if err != nil || len(raw) != store.IDSize {
		t.Fatalf("bad %s", envCrashQueue)
	}
	id := store.ID(raw)
	s, err := open(os.Getenv(envCrashPath))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var (
		mu  sync.Mutex // orders whole lines on stdout
		out = bufio.NewWriter(os.Stdout)
	)
	report := func(kind string, seq uint64) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%s %d\n", kind, seq)
		out.Flush()
	}
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			data := make([]byte, crashBlockSize)
			for i := 0; ; i++ {
				copy(data, fmt.Sprintf("block %d/%d ", w, i))
				seq, err := s.Append(ctx, id, data, time.Now(), 1<<30)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				report("A", seq)
				if i%3 == 0 { // acknowledge some, so removals are checked too
					// Said first: a block whose Ack is under way when the
					// kill lands may be gone or not.
					report("T", seq)
					if err := s.Ack(ctx, id, seq); err != nil {
						t.Errorf("ack: %v", err)
						return
					}
					report("D", seq)
				}
			}
		})
	}
	wg.Wait()
}
