package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
)

// word is a random marker, so that a text found in a file can only come
// from this run.
func word(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// TestE2E runs the "done when" scenario through separate
// processes: two relays, two profiles with both relays, invite, accept,
// receive, messages both ways with receipts; then one relay SIGKILLed,
// both relays down (the outbox holds the message until a relay returns),
// the receiving agent (daemon) SIGKILLed and restarted mid-conversation;
// and finally what the relays and the profiles hold on disk.
func TestE2E(t *testing.T) {
	t.Cleanup(leakcheck.Check(t)) // registered first: runs after every process is gone
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	r1 := startRelay(t, ctx, filepath.Join(dir, "relay1"))
	r2 := startRelay(t, ctx, filepath.Join(dir, "relay2"))
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	aliceName, bobName := word("Alice"), word("Bob")
	must(t, ctx, alice, "init", "--name", aliceName)
	must(t, ctx, bob, "init", "--name", bobName)
	for _, h := range []string{alice, bob} {
		must(t, ctx, h, "relays", "add", r1.addr)
		must(t, ctx, h, "relays", "add", r2.addr)
	}
	var sent []string // every text, to look for on disk at the end

	// Invitation, acceptance, the handshake processed by receive.
	link := strings.TrimSpace(must(t, ctx, alice, "invite", "--name", "bob"))
	must(t, ctx, bob, "accept", link, "--name", "alice")
	evs := receive(t, ctx, alice, "1s")
	if !slices.ContainsFunc(evs, func(e event) bool {
		return e.Type == "contact-added" && e.Contact != nil && e.Contact.Name == "bob" && e.Contact.DisplayName == bobName
	}) {
		t.Fatalf("alice's receive after accept: %+v", evs)
	}
	receive(t, ctx, bob, "1s")

	// A message each way, with delivery and read receipts.
	m1 := word("from-bob")
	sent = append(sent, m1)
	must(t, ctx, bob, "send", "alice", m1)
	if got := texts(receive(t, ctx, alice, "1s")); !slices.Equal(got, []string{m1}) {
		t.Fatalf("alice received %q, want %q", got, m1)
	}
	if st := statuses(receive(t, ctx, bob, "1s"), m1); !slices.Contains(st, "delivered") || !slices.Contains(st, "read") {
		t.Errorf("bob's receipts for m1: %v, want delivered and read", st)
	}
	m2 := word("from-alice")
	sent = append(sent, m2)
	must(t, ctx, alice, "send", "bob", m2)
	if got := texts(receive(t, ctx, bob, "1s")); !slices.Equal(got, []string{m2}) {
		t.Fatalf("bob received %q, want %q", got, m2)
	}
	if st := statuses(receive(t, ctx, alice, "1s"), m2); !slices.Contains(st, "delivered") || !slices.Contains(st, "read") {
		t.Errorf("alice's receipts for m2: %v, want delivered and read", st)
	}

	// One relay SIGKILLed: messages still arrive through the other.
	r1.p.kill()
	m3, m4 := word("bob-one-relay"), word("alice-one-relay")
	sent = append(sent, m3, m4)
	must(t, ctx, bob, "send", "alice", m3)
	if got := texts(receive(t, ctx, alice, "1s")); !slices.Equal(got, []string{m3}) {
		t.Fatalf("with relay 1 killed, alice received %q, want %q", got, m3)
	}
	must(t, ctx, alice, "send", "bob", m4)
	if got := texts(receive(t, ctx, bob, "1s")); !slices.Equal(got, []string{m4}) {
		t.Fatalf("with relay 1 killed, bob received %q, want %q", got, m4)
	}

	// Both relays down: send succeeds into the outbox; the message is
	// delivered once a relay is back.
	r2.p.kill()
	m5 := word("outbox")
	sent = append(sent, m5)
	res := parley(t, ctx, alice, "send", "--wait", "1s", "bob", m5)
	if res.err != nil || !strings.Contains(res.stdout, " pending") || !strings.Contains(res.stderr, "waits in the outbox") {
		t.Fatalf("send with every relay down: err %v, stdout %q, stderr %q", res.err, res.stdout, res.stderr)
	}
	r2.start(ctx)
	receive(t, ctx, alice, "1s") // alice's agent runs: its outbox drains to relay 2
	if got := texts(receive(t, ctx, bob, "1s")); !slices.Equal(got, []string{m5}) {
		t.Fatalf("after relay 2 came back, bob received %q, want %q", got, m5)
	}
	r1.start(ctx)
	// Copies of m3..m5 left in the outboxes for relay 1 now go there too;
	// the receivers drop them as duplicates.
	receive(t, ctx, alice, "1s")
	if got := texts(receive(t, ctx, bob, "1s")); len(got) != 0 {
		t.Fatalf("bob was shown again %q after relay 1 came back", got)
	}
	if got := texts(receive(t, ctx, alice, "1s")); len(got) != 0 {
		t.Fatalf("alice was shown again %q after relay 1 came back", got)
	}

	// Bob's agent runs as a daemon and is SIGKILLed mid-conversation.
	sockDir, err := os.MkdirTemp("", "pd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "s")
	d1 := startDaemon(t, ctx, bob, sock)
	m6 := word("before-kill")
	sent = append(sent, m6)
	must(t, ctx, alice, "send", "bob", m6)
	if !d1.waitNote(ctx, func(e event) bool { return e.Type == "message" && e.Message != nil && e.Message.Text == m6 }) {
		t.Fatal("bob's daemon did not report m6")
	}
	m7, m8 := word("during-kill"), word("after-kill")
	sent = append(sent, m7, m8)
	must(t, ctx, alice, "send", "bob", m7)
	d1.p.kill() // right after m7 reached the relays: it may be mid-delivery
	notes := d1.notifications()
	must(t, ctx, alice, "send", "bob", m8)
	d2 := startDaemon(t, ctx, bob, sock)
	if !d2.waitNote(ctx, func(e event) bool { return e.Type == "message" && e.Message != nil && e.Message.Text == m8 }) {
		t.Fatal("bob's restarted daemon did not report m8")
	}
	var conv []message
	if err := d2.call(ctx, "messages", map[string]string{"contact": "alice"}, &conv); err != nil {
		t.Fatal(err)
	}
	// The same JSON-RPC on the daemon's Unix socket.
	if got := socketCall(t, ctx, sock, `{"jsonrpc":"2.0","id":7,"method":"contacts"}`); !strings.Contains(got, `"id":7,"result":[{`) || !strings.Contains(got, `"name":"alice"`) {
		t.Errorf("contacts over the socket: %s", got)
	}
	// A disappearing-message timer through the daemon.
	var timed map[string]any
	if err := d2.call(ctx, "disappear", map[string]any{"contact": "alice", "seconds": 3600}, &timed); err != nil || timed["disappearAfter"] != "1h0m0s" {
		t.Errorf("disappear through the daemon: %v, %v", timed, err)
	}
	d2.stop(ctx)
	notes = append(notes, d2.notifications()...)
	shown := map[string]int{}
	for _, n := range notes {
		if n.Type == "message" && n.Message != nil {
			shown[n.Message.Text]++
		}
	}
	for _, m := range []string{m6, m7, m8} {
		if shown[m] > 1 {
			t.Errorf("the daemons reported %q %d times", m, shown[m])
		}
	}
	if shown[m6] != 1 || shown[m8] != 1 {
		t.Errorf("the daemons reported m6 %d and m8 %d times, want once each", shown[m6], shown[m8])
	}
	// The conversation holds every message exactly once, in order.
	var got []string
	for _, m := range conv {
		got = append(got, m.Text)
	}
	want := []string{m1, m2, m3, m4, m5, m6, m7, m8}
	if !slices.Equal(got, want) {
		t.Errorf("bob's conversation after the kill:\n got %q\nwant %q", got, want)
	}
	// receive shows what the daemons reported but nobody read, once.
	if got := texts(receive(t, ctx, bob, "1s")); !slices.Equal(got, []string{m6, m7, m8}) {
		t.Errorf("bob's receive after the daemon: %q, want %q", got, []string{m6, m7, m8})
	}
	if got := texts(receive(t, ctx, bob, "500ms")); len(got) != 0 {
		t.Errorf("bob's second receive showed %q again", got)
	}

	// What a relay sees, and what a profile holds.
	var contacts []struct {
		Identity string `json:"identity"`
	}
	for _, h := range []string{alice, bob} {
		for line := range strings.Lines(must(t, ctx, h, "--json", "contacts")) {
			var c struct {
				Identity string `json:"identity"`
			}
			if err := json.Unmarshal([]byte(line), &c); err != nil {
				t.Fatal(err)
			}
			contacts = append(contacts, c)
		}
	}
	r1.p.kill()
	r2.p.kill()

	secrets := map[string][]byte{}
	for i, m := range sent {
		secrets["message "+string(rune('1'+i))] = []byte(m)
	}
	secrets["alice's display name"] = []byte(aliceName)
	secrets["bob's display name"] = []byte(bobName)
	secrets["invitation link"] = []byte(link)
	for i, c := range contacts {
		secrets["identity text "+string(rune('a'+i))] = []byte(c.Identity)
		raw := decodeB64(t, strings.TrimPrefix(c.Identity, "parley-id:"))
		for off := 1; off+32 <= len(raw); off += 32 {
			secrets["identity key bytes "+string(rune('a'+i))+"@"+itoa(off)] = raw[off : off+32]
		}
	}
	hpkeKey, bundle := invitationSecrets(t, link)
	for off := 0; off+32 <= len(hpkeKey); off += 64 {
		secrets["invitation HPKE key @"+itoa(off)] = hpkeKey[off : off+32]
	}
	for off := 0; off+32 <= len(bundle); off += 64 {
		secrets["invitation prekey bundle @"+itoa(off)] = bundle[off : off+32]
	}

	// The scanner must be able to find what it looks for: every secret,
	// as is and in each encoding containsAny tries, inside other bytes.
	for what, sec := range secrets {
		if len(sec) < 16 {
			t.Fatalf("%s is only %d bytes: a scan for it proves little", what, len(sec))
		}
		for _, enc := range [][]byte{sec, []byte(base64.RawURLEncoding.EncodeToString(sec)), []byte(base64.StdEncoding.EncodeToString(sec)), []byte(hex.EncodeToString(sec))} {
			if !containsAny(append(append([]byte("prefix\x00"), enc...), "\x00suffix"...), sec) {
				t.Fatalf("the scanner does not find %s in a file that holds it", what)
			}
		}
	}
	// Both relays stored blocks: their data directories hold a store
	// (whatever its engine names its files), not only the relay's key.
	for _, r := range []*relayProc{r1, r2} {
		var stored int64
		for _, f := range files(t, r.dir) {
			if st, err := os.Stat(f); err == nil && filepath.Base(f) != "relay.key" {
				stored += st.Size()
			}
		}
		if stored < 4096 {
			t.Fatalf("the store in %s holds %d bytes: a scan of it would prove nothing", r.dir, stored)
		}
	}

	// Every file in the relays' data directories, their logs, and the
	// traffic captured between the clients and them. (The capture is the
	// TLS 1.3 stream, what a network observer sees; what the relay
	// itself receives after TLS and keeps is in its database, scanned
	// here, and in its debug log.)
	relayFiles := append(files(t, r1.dir), files(t, r2.dir)...)
	relayFiles = append(append(relayFiles, r1.logs...), r2.logs...)
	for _, c := range []string{r1.dir + ".capture", r2.dir + ".capture"} {
		if st, err := os.Stat(c); err != nil || st.Size() < 10000 {
			t.Fatalf("traffic capture %s: %v, %v bytes: the clients did not go through the tap", c, err, st)
		}
	}
	if len(relayFiles) < 6 {
		t.Fatalf("relay files: %v", relayFiles)
	}
	for _, f := range relayFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for what, s := range secrets {
			if containsAny(b, s) {
				t.Errorf("relay file %s contains %s", filepath.Base(f), what)
			}
		}
	}
	profileFiles := append(files(t, alice), files(t, bob)...)
	if len(profileFiles) < 2 {
		t.Fatalf("profile files: %v", profileFiles)
	}
	for _, f := range profileFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range sent {
			if containsAny(b, []byte(m)) {
				t.Errorf("profile file %s contains message %d in clear", f, i+1)
			}
		}
		for _, n := range []string{aliceName, bobName} {
			if containsAny(b, []byte(n)) {
				t.Errorf("profile file %s contains a display name in clear", f)
			}
		}
	}
}

// containsAny reports whether b holds s as is, or as base64 (standard or
// URL alphabet) or hex when s is binary-looking.
func containsAny(b, s []byte) bool {
	if strings.Contains(string(b), string(s)) {
		return true
	}
	for _, enc := range []string{
		base64.RawURLEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(s), hex.EncodeToString(s),
	} {
		if len(enc) >= 16 && strings.Contains(string(b), enc[:len(enc)-2]) {
			return true
		}
	}
	return false
}

// files lists every regular file under dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return b
}

// invitationSecrets takes the HPKE public key and the prekey bundle out of
// an invitation link (agent package, "Invitation": version, expiry,
// key<2>, queues, bundle<2> last). The relays legitimately learn the
// queue part (their own sender IDs), so only these two are looked for.
func invitationSecrets(t *testing.T, link string) (key, bundle []byte) {
	t.Helper()
	raw := decodeB64(t, strings.TrimPrefix(link, "parley://invite#"))
	if len(raw) < 11 {
		t.Fatal("short invitation")
	}
	n := int(binary.BigEndian.Uint16(raw[9:]))
	key = raw[11 : 11+n]
	// The bundle is the last field: the first offset whose uint16 length
	// prefix spans exactly the rest.
	for i := 11 + n; i+2 < len(raw); i++ {
		if int(binary.BigEndian.Uint16(raw[i:])) == len(raw)-i-2 && len(raw)-i-2 > 1000 {
			return key, raw[i+2:]
		}
	}
	t.Fatal("no prekey bundle found in the invitation")
	return nil, nil
}

// socketCall sends one request line on the daemon's socket and returns
// the first answer line (notifications skipped).
func socketCall(t *testing.T, ctx context.Context, sock, req string) string {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		t.Fatalf("dialing the daemon's socket: %v", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"method":"event"`) {
			return sc.Text()
		}
	}
	t.Fatalf("no answer on the socket: %v", sc.Err())
	return ""
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
