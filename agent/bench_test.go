package agent

import (
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
	"github.com/parley-messenger/parley/ratchet"
	"github.com/parley-messenger/parley/relay/client"
)

const benchText = "a message of an ordinary length, about sixty bytes or so..."

// reportLatencies reports the p50 and p99 of the measured latencies, the
// messages per second of the loop (one message in flight at a time, so
// messages/s is the inverse of the mean latency plus the loop's own
// overhead) and the process's CPU time per message (relays and both sides
// included: on a loaded machine, the figure that depends least on the
// other load).
func reportLatencies(b *testing.B, d []time.Duration, elapsed, cpu time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(len(d))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(len(d)), "cpu-µs/msg")
}

// BenchmarkEndToEnd measures, in one run, one message of a conversation
// from the sender's call to the receiver's event (agent) and its two
// baselines: the same block through the same two relays with the relay
// client alone (relay-only), and the ratchet's encryption and decryption
// of the same message alone (crypto-only). What the agent adds is
// agent / (relay-only + crypto-only); docs/BENCHMARKS.md "Agent end to
// end" has the command and the figures.
//
//	go test -run '^$' -bench EndToEnd -benchtime 300x -count 6 ./agent/
func BenchmarkEndToEnd(b *testing.B) {
	b.Run("agent", benchAgent)
	b.Run("relay-only", benchRelayOnly)
	b.Run("crypto-only", benchCryptoOnly)
}

// benchAgent is one message from alice's Send to bob's EventMessage,
// through two in-process relays on loopback, one at a time (the delivery
// receipt travels back meanwhile, as it does in a conversation). Each
// profile's store is a real SQLite file with its default durability.
func benchAgent(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rs, stop := startRelays(b, 2)
	defer stop()
	alice := openAgentWith(b, newProfile(b, "alice", rs...), "alice", benchOptions())
	defer alice.close()
	bobT := openAgentWith(b, newProfile(b, "bob", rs...), "bob", benchOptions())
	bobsAlice, _ := connect(b, ctx, alice, bobT)
	// Bob again, without the tests' event recorder: the loop below takes
	// his events from Events itself, as a front end does, so that no
	// goroutine of the test stands between his agent and the clock.
	bobT.close()
	bob, err := Open(bobT.home, []byte("bob passphrase"), benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer bob.Close()
	if err := bob.Ready(ctx); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	commits := func() (durable, relaxed uint64) {
		ad, ar := alice.store.Commits()
		bd, br := bob.store.Commits()
		return ad + bd, ar + br
	}
	durable0, relaxed0 := commits()
	b.ResetTimer()
	begin, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		start := time.Now()
		if _, err := alice.Send(ctx, bobsAlice, benchText); err != nil {
			b.Fatal(err)
		}
	wait:
		for {
			select {
			case ev := <-bob.Events():
				if ev.Type == EventMessage {
					break wait
				}
			case <-ctx.Done():
				b.Fatal("timed out")
			}
		}
		lat = append(lat, time.Since(start))
	}
	elapsed, cpu := time.Since(begin), cpuTime()-cpu0
	b.StopTimer()
	reportLatencies(b, lat, elapsed, cpu)
	// Store commits of both sides per message, receipts included (the
	// receipt of the last message may still be on its way: at most a
	// few commits over the whole run).
	durable, relaxed := commits()
	b.ReportMetric(float64(durable-durable0)/float64(len(lat)), "syncs/msg")
	b.ReportMetric(float64(relaxed-relaxed0)/float64(len(lat)), "relaxed/msg")
}

// benchOptions are the defaults a user gets (the tests' short expiry
// interval would scan the conversation twenty times a second), except the
// Argon2id setting, which only Open uses, never the message path.
func benchOptions() *Options {
	return &Options{KDF: localstore.TestKDF}
}

// benchRelayOnly is the transport baseline of the same run: one block
// sent to one queue on each of two relays at once (as the agent's outbox
// does), from the first Send to the first delivery at the subscriber,
// with the relay client alone. Both copies are acknowledged before the
// next block, outside the measured time.
func benchRelayOnly(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rs, stop := startRelays(b, 2)
	defer stop()
	type side struct {
		recv, send *client.Client
		q          *client.RecipientQueue
		sq         client.SenderQueue
	}
	sides := make([]side, len(rs))
	for i, r := range rs {
		recv, err := client.Dial(ctx, r.addr, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer recv.Close()
		send, err := client.Dial(ctx, r.addr, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer send.Close()
		q, err := recv.Create(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := recv.Subscribe(ctx, q); err != nil {
			b.Fatal(err)
		}
		sides[i] = side{recv: recv, send: send, q: q, sq: q.SenderQueue()}
	}
	payload := make([]byte, 3000) // about a ratchet envelope's size; the relay pads every block anyway
	deliveries := make(chan int, len(sides))
	var lat []time.Duration
	b.ResetTimer()
	begin, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		start := time.Now()
		var wg sync.WaitGroup
		for i := range sides {
			s := &sides[i]
			wg.Go(func() {
				if err := s.send.Send(ctx, &s.sq, payload); err != nil {
					b.Error(err)
				}
			})
			wg.Go(func() {
				select {
				case d := <-s.recv.Deliveries():
					deliveries <- i
					if err := s.recv.Ack(ctx, s.q, d.Seq); err != nil {
						b.Error(err)
					}
				case <-ctx.Done():
					b.Error("timed out")
				}
			})
		}
		<-deliveries
		lat = append(lat, time.Since(start))
		wg.Wait()
		<-deliveries
		if b.Failed() {
			b.FailNow()
		}
	}
	elapsed, cpu := time.Since(begin), cpuTime()-cpu0
	b.StopTimer()
	reportLatencies(b, lat, elapsed, cpu)
}

// benchCryptoOnly is the cryptographic baseline of the same run: one
// ratchet Encrypt and Decrypt of the agent message (with a reply every
// message, so every message takes a DH and KEM ratchet step, as a
// conversation with receipts does).
func benchCryptoOnly(b *testing.B) {
	aliceID, _ := identity.Generate()
	bobID, _ := identity.Generate()
	pk, _ := identity.NewPrekeyStore(bobID)
	bundle, _ := pk.NewBundle(true)
	in, err := pqxdh.Initiate(aliceID, bundle)
	if err != nil {
		b.Fatal(err)
	}
	as, err := ratchet.NewInitiator(in.SharedKey, in.AD, in.PeerRatchetKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	first, _ := as.Encrypt([]byte("hello"))
	msg, _ := in.Message(first)
	res, err := pqxdh.Respond(bobID, pk, msg)
	if err != nil {
		b.Fatal(err)
	}
	bs, err := ratchet.NewResponder(res.SharedKey, res.AD, res.RatchetKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bs.Decrypt(res.FirstPayload); err != nil {
		b.Fatal(err)
	}
	m := message{Kind: kindText, Body: []byte(benchText)}
	rand.Read(m.ID[:])
	pt := m.marshal()
	var lat []time.Duration
	begin, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		start := time.Now()
		ct, err := as.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bs.Decrypt(ct); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		as, bs = bs, as // the other side answers: a ratchet step each time
	}
	elapsed, cpu := time.Since(begin), cpuTime()-cpu0
	reportLatencies(b, lat, elapsed, cpu)
}

// BenchmarkSendFlush is what a command-line send waits for: Send, then
// Flush until the envelope has reached a relay.
func BenchmarkSendFlush(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rs, stop := startRelays(b, 2)
	defer stop()
	alice := openAgentWith(b, newProfile(b, "alice", rs...), "alice", benchOptions())
	defer alice.close()
	bob := openAgentWith(b, newProfile(b, "bob", rs...), "bob", benchOptions())
	defer bob.close()
	bobsAlice, _ := connect(b, ctx, alice, bob)
	var lat []time.Duration
	b.ResetTimer()
	begin, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		start := time.Now()
		if _, err := alice.Send(ctx, bobsAlice, benchText); err != nil {
			b.Fatal(err)
		}
		if err := alice.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	elapsed, cpu := time.Since(begin), cpuTime()-cpu0
	b.StopTimer()
	reportLatencies(b, lat, elapsed, cpu)
}

// BenchmarkExpiryPass is one pass of the expiry loop (every 10 s by
// default, holding the agent's lock) over a profile with 1,000 stored
// messages, none of them disappearing: scan-every-pass forgets what the
// last pass found before each pass (what every pass did before
// nextExpiry), scan-when-due is the agent as it is.
func BenchmarkExpiryPass(b *testing.B) {
	b.Run("scan-every-pass", func(b *testing.B) { benchExpiryPass(b, true) })
	b.Run("scan-when-due", func(b *testing.B) { benchExpiryPass(b, false) })
}

func benchExpiryPass(b *testing.B, forget bool) {
	a := openAgentWith(b, newProfile(b, "alice"), "alice", benchOptions())
	defer a.close()
	const n = 1000
	a.op.Lock()
	err := a.store.Update(func(tx *localstoreTx) error {
		for i := range n {
			m := messageRecord{ID: MessageID(newID(16)), Contact: "c", Text: benchText, Status: StatusRead, Order: uint64(i)}
			if err := putJSONGrouped(tx, tblMessages, []byte(m.Contact), []byte(m.ID), m); err != nil {
				return err
			}
		}
		return nil
	})
	a.op.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	for b.Loop() {
		if forget {
			a.op.Lock()
			a.expiryKnown = false
			a.op.Unlock()
		}
		if _, err := a.expire(time.Now(), false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}
