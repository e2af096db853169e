package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// testRelay is an in-process relay on a fixed loopback address that can be
// stopped and started again (same key, same address, same store).
type testRelay struct {
	t     testing.TB
	key   ed25519.PrivateKey
	hp    string
	addr  string
	store *recordingStore

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startRelay(t testing.TB) *testRelay {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testRelay{t: t, key: key, hp: ln.Addr().String(), store: &recordingStore{Store: memstore.New(memstore.Options{})}}
	r.serve(ln)
	t.Cleanup(func() { r.stop(); r.store.Store.Close() })
	return r
}

// startRelays starts n relays; the returned function stops them all (defer
// it after leakcheck.Check, so that it runs first).
func startRelays(t testing.TB, n int) ([]*testRelay, func()) {
	rs := make([]*testRelay, n)
	for i := range rs {
		rs[i] = startRelay(t)
	}
	return rs, func() {
		for _, r := range rs {
			r.stop()
		}
	}
}

func (r *testRelay) serve(ln net.Listener) {
	srv, err := relay.NewServer(relay.Config{Key: r.key, Store: nopClose{r.store}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = srv.Address(r.hp)
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	r.wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			r.t.Errorf("Serve: %v", err)
		}
	})
}

func (r *testRelay) stop() {
	r.mu.Lock()
	cancel := r.cancel
	r.cancel = nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		r.wg.Wait()
	}
}

func (r *testRelay) start() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", r.hp); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

type nopClose struct{ store.Store }

func (nopClose) Close() error { return nil }

// recordingStore keeps everything a relay is given to store: blocks and
// queue keys. It is what "a relay sees" at rest.
type recordingStore struct {
	store.Store
	mu   sync.Mutex
	seen [][]byte
}

func (s *recordingStore) record(b ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range b {
		s.seen = append(s.seen, bytes.Clone(x))
	}
}

func (s *recordingStore) CreateQueue(ctx context.Context, q store.Queue) error {
	s.record(q.RecipientID[:], q.SenderID[:], q.RecipientKey, q.SenderKey, q.DeliveryKey)
	return s.Store.CreateQueue(ctx, q)
}

func (s *recordingStore) SecureQueue(ctx context.Context, id store.ID, key []byte) error {
	s.record(key)
	return s.Store.SecureQueue(ctx, id, key)
}

func (s *recordingStore) Append(ctx context.Context, id store.ID, data []byte, t time.Time, max int) (uint64, error) {
	s.record(data)
	return s.Store.Append(ctx, id, data, t, max)
}

func (s *recordingStore) all() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Join(s.seen, nil)
}

func testOptions() *Options {
	return &Options{
		KDF:            localstore.TestKDF,
		RetryMin:       20 * time.Millisecond,
		RetryMax:       200 * time.Millisecond,
		SendTimeout:    3 * time.Second,
		ExpiryInterval: 50 * time.Millisecond,
		Client:         &client.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
	}
}

// testAgent is an agent with an event recorder.
type testAgent struct {
	*Agent
	t    testing.TB
	home string
	name string

	mu     sync.Mutex
	events []Event
	wg     sync.WaitGroup
	notify chan struct{}
}

func newProfile(t testing.TB, name string, relays ...*testRelay) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	if _, err := Init(home, []byte(name+" passphrase"), name, testOptions()); err != nil {
		t.Fatal(err)
	}
	a := openAgent(t, home, name)
	for _, r := range relays {
		if err := a.AddRelay(r.addr); err != nil {
			t.Fatal(err)
		}
	}
	a.close()
	return home
}

func openAgent(t testing.TB, home, name string) *testAgent {
	t.Helper()
	return openAgentWith(t, home, name, testOptions())
}

func openAgentWith(t testing.TB, home, name string, opts *Options) *testAgent {
	t.Helper()
	a, err := Open(home, []byte(name+" passphrase"), opts)
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAgent{Agent: a, t: t, home: home, name: name, notify: make(chan struct{}, 1)}
	ta.wg.Go(func() {
		for ev := range a.Events() {
			ta.mu.Lock()
			ta.events = append(ta.events, ev)
			ta.mu.Unlock()
			select {
			case ta.notify <- struct{}{}:
			default:
			}
		}
	})
	return ta
}

func (ta *testAgent) close() {
	ta.t.Helper()
	if err := ta.Close(); err != nil {
		ta.t.Errorf("%s: Close: %v", ta.name, err)
	}
	ta.wg.Wait()
}

// waitEvent waits for an event matching pred (among all recorded so far
// and future ones) and returns it.
func (ta *testAgent) waitEvent(ctx context.Context, what string, pred func(Event) bool) Event {
	ta.t.Helper()
	ev, _ := ta.waitEventFrom(ctx, what, 0, pred)
	return ev
}

// waitEventFrom is waitEvent among the events from index from on; it
// also returns the event's index.
func (ta *testAgent) waitEventFrom(ctx context.Context, what string, from int, pred func(Event) bool) (Event, int) {
	ta.t.Helper()
	for {
		ta.mu.Lock()
		for i := from; i < len(ta.events); i++ {
			if ev := ta.events[i]; pred(ev) {
				ta.mu.Unlock()
				return ev, i
			}
		}
		ta.mu.Unlock()
		select {
		case <-ta.notify:
		case <-ctx.Done():
			ta.mu.Lock()
			for _, ev := range ta.events {
				ta.t.Logf("%s event: %v %v %v", ta.name, ev.Type, ev.Relay, ev.Err)
			}
			ta.mu.Unlock()
			ta.t.Fatalf("%s: timed out waiting for %s", ta.name, what)
		}
	}
}

func (ta *testAgent) waitMessage(ctx context.Context, text string) Message {
	ta.t.Helper()
	ev := ta.waitEvent(ctx, "message "+text, func(ev Event) bool {
		return ev.Type == EventMessage && ev.Message.Text == text
	})
	return *ev.Message
}

func (ta *testAgent) waitStatus(ctx context.Context, id MessageID, st Status) {
	ta.t.Helper()
	ta.waitEvent(ctx, "status "+st.String(), func(ev Event) bool {
		return ev.Type == EventStatus && ev.Message.ID == id && ev.Message.Status >= st
	})
}

func (ta *testAgent) countMessages(text string) int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	n := 0
	for _, ev := range ta.events {
		if ev.Type == EventMessage && ev.Message.Text == text {
			n++
		}
	}
	return n
}

// connect runs invite/accept between two agents and waits until both
// sides are connected. It returns each side's contact ID for the other.
func connect(t testing.TB, ctx context.Context, inviter, accepter *testAgent) (ContactID, ContactID) {
	t.Helper()
	link, err := inviter.Invite(ctx, accepter.name)
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	c, err := accepter.Accept(ctx, link, inviter.name)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	added := inviter.waitEvent(ctx, "contact added", func(ev Event) bool { return ev.Type == EventContactAdded })
	accepter.waitEvent(ctx, "connected", func(ev Event) bool {
		return ev.Type == EventContactUpdated && ev.Contact.ID == c.ID && ev.Contact.Connected
	})
	return added.Contact.ID, c.ID
}

type localstoreTx = localstore.Tx

func afterShort() <-chan time.Time { return time.After(20 * time.Millisecond) }

// assertNoErrors fails if the agent reported a background error: in a
// healthy conversation over two relays, the second copy of every envelope
// must be dropped by de-duplication before any decryption is attempted
// (a decryption of it would fail as a replay and be reported).
func (ta *testAgent) assertNoErrors() {
	ta.t.Helper()
	ta.mu.Lock()
	defer ta.mu.Unlock()
	for _, ev := range ta.events {
		if ev.Type == EventError {
			ta.t.Errorf("%s: background error: %v", ta.name, ev.Err)
		}
	}
}
