// Command benchratios reads `go test -bench` output from bench/cryptocore
// and bench/relaynats and prints, as Markdown tables, the ratios that
// issues 2 and 3 set targets for: each one-to-one operation against its
// primitive lower bound and against go.mau.fi/libsignal, and the relay
// against embedded NATS. Every figure is the median of the samples of one
// benchmark (the same statistic benchstat shows).
//
// Usage:
//
//	benchratios results.txt...
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// samples maps a benchmark name (GOMAXPROCS suffix removed) and a unit to
// its measured values.
type samples map[string]map[string][]float64

var procsSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader, s samples) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procsSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			if s[name] == nil {
				s[name] = map[string][]float64{}
			}
			s[name][f[i+1]] = append(s[name][f[i+1]], v)
		}
	}
	return sc.Err()
}

// median returns the median of name's values in unit, and whether there
// were any.
func (s samples) median(name, unit string) (float64, bool) {
	v := slices.Clone(s[name][unit])
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// best returns the least-disturbed sample of name in unit: the minimum for
// a cost (ns/op, µs), the maximum for a rate (msgs/s). On a shared machine
// the noise from other processes only ever slows a benchmark down, so the
// best of the rounds is the closest to the code's own cost.
func (s samples) best(name, unit string) (float64, bool) {
	v := s[name][unit]
	if len(v) == 0 {
		return 0, false
	}
	if strings.HasSuffix(unit, "/s") {
		return slices.Max(v), true
	}
	return slices.Min(v), true
}

// stat is median or best.
type stat func(s samples, name, unit string) (float64, bool)

// term is count calls of one primitive (a sub-benchmark of
// BenchmarkPrimitive in bench/cryptocore).
type term struct {
	prim  string
	count int
}

func plus(parts ...[]term) []term {
	var out []term
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// The primitives each operation must perform, per message, with Parley's
// design, counted for the cheapest correct implementation: AES-256-GCM with
// a fresh key schedule per message key (each is used once) but header keys
// kept expanded (one serves a whole chain); header encryption per Double
// Ratchet §4 with 41-byte headers without the KEM step and 2,313-byte
// headers with it. docs/BENCHMARKS.md explains each line.
var (
	// A message on a symmetric chain: one KDF_CK step at each end (§5.2),
	// a random header nonce, the header sealed and opened, the 256-byte
	// body sealed and opened under the message key.
	symmetricDH = []term{
		{"KDF_CK", 2}, {"random-12B", 1},
		{"AES256GCM-hdrseal-41", 1}, {"AES256GCM-hdropen-41", 1},
		{"AES256GCM-seal-256", 1}, {"AES256GCM-open-256", 1},
	}
	symmetricPQ = []term{
		{"KDF_CK", 2}, {"random-12B", 1},
		{"AES256GCM-hdrseal-2313", 1}, {"AES256GCM-hdropen-2313", 1},
		{"AES256GCM-seal-256", 1}, {"AES256GCM-open-256", 1},
	}
	// A message carrying a new ratchet key adds, at the receiver, the failed
	// header open under HKr before NHKr opens it (§4.6) and the DH ratchet
	// step (§3.5): DH, KDF_RK, GENERATE_DH, DH, KDF_RK.
	dhStep = []term{
		{"AES256GCM-hdropenfail-41", 1}, {"X25519-ECDH", 2}, {"X25519-keygen", 1},
		{"HKDF-SHA256-96B", 2},
	}
	// With the KEM step (SimpleX PQ2HE): decapsulate the header's
	// ciphertext, generate a new ML-KEM-768 key pair, parse the peer's
	// encapsulation key and encapsulate to it; KDF_RK takes DH || SS.
	pqStep = []term{
		{"AES256GCM-hdropenfail-2313", 1}, {"X25519-ECDH", 2}, {"X25519-keygen", 1},
		{"HKDF-SHA256-96B-ikm64", 2},
		{"MLKEM768-decaps", 1}, {"MLKEM768-keygen", 1},
		{"MLKEM768-parse-encaps-key", 1}, {"MLKEM768-encaps", 1},
	}
	// Restoring a session before it receives: with Go's standard library,
	// an X25519 private key parsed from bytes has its public key recomputed
	// (crypto/ecdh.NewPrivateKey), and an ML-KEM-768 decapsulation key is
	// expanded from its 64-byte seed.
	restoreDH = []term{{"X25519-restore-private", 1}}
	restorePQ = []term{{"X25519-restore-private", 1}, {"MLKEM768-restore-decaps-key", 1}}
	// PQXDH with a one-time prekey (§3.3, §3.4): the initiator verifies the
	// bundle's four signatures (identity binding, SPK, OPK, KEM prekey),
	// generates EK, computes DH1..DH4, parses and encapsulates to the
	// ML-KEM-1024 prekey and runs the KDF; the responder verifies the
	// initiator's binding, computes DH1..DH4, decapsulates and runs the
	// KDF. Then the ratchets start with the KEM step: Alice generates her
	// ratchet and ML-KEM-768 keys, does one DH and KDF_RK and sends the
	// first message (its header carries her encapsulation key); Bob opens
	// it and runs the DH ratchet step, encapsulating to Alice's key.
	sessionSetup = []term{
		{"Ed25519-verify", 5}, {"X25519-keygen", 1}, {"X25519-ECDH", 8},
		{"MLKEM1024-parse-encaps-key", 1}, {"MLKEM1024-encaps", 1}, {"MLKEM1024-decaps", 1},
		{"HKDF-SHA256-PQXDH", 2},
		{"X25519-keygen", 2}, {"X25519-ECDH", 3}, {"HKDF-SHA256-96B", 2}, {"HKDF-SHA256-96B-ikm64", 1},
		{"MLKEM768-keygen", 2}, {"MLKEM768-parse-encaps-key", 1}, {"MLKEM768-encaps", 1},
		{"KDF_CK", 2}, {"random-12B", 1},
		{"AES256GCM-hdrseal-1225", 1}, {"AES256GCM-hdropen-1225", 1},
		{"AES256GCM-seal-256", 1}, {"AES256GCM-open-256", 1},
	}
)

// lowerBound sums the costs of ts (each taken with st in unit), in ns.
func (s samples) lowerBound(ts []term, st stat, costUnit string) (float64, error) {
	var sum float64
	for _, t := range ts {
		v, ok := st(s, "Primitive/"+t.prim, costUnit)
		if !ok {
			return 0, fmt.Errorf("no samples for primitive %s", t.prim)
		}
		sum += float64(t.count) * v
	}
	return sum, nil
}

func describe(ts []term) string {
	counts := map[string]int{}
	var order []string
	for _, t := range ts {
		if counts[t.prim] == 0 {
			order = append(order, t.prim)
		}
		counts[t.prim] += t.count
	}
	parts := make([]string, len(order))
	for i, p := range order {
		parts[i] = fmt.Sprintf("%d× %s", counts[p], p)
	}
	return strings.Join(parts, " + ")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func us(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1000) }

func main() {
	s := samples{}
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fatal(err)
		}
		err = parse(f, s)
		f.Close()
		if err != nil {
			fatal(fmt.Errorf("%s: %w", path, err))
		}
	}
	if _, ok := s.median("Primitive/X25519-ECDH", "ns/op"); ok {
		if err := coreTables(s); err != nil {
			fatal(err)
		}
	}
	if _, ok := s.median("Fdatasync", "ns/op"); ok {
		relayTables(s)
	}
}

func coreTables(s samples) error {
	med, best := samples.median, samples.best
	// A cost is read as the process CPU time per op (cpu-ns/op, see
	// bench/cryptocore/cpu_test.go) where it was measured: it does not
	// count the time spent waiting for a CPU on a shared machine. Else it
	// is the wall time (ns/op).
	costUnit := "ns/op"
	if _, ok := s.median("Primitive/X25519-ECDH", "cpu-ns/op"); ok {
		costUnit = "cpu-ns/op"
	}
	fmt.Printf("Costs are read in %s.\n\n", costUnit)
	fmt.Println("Parley against its primitive lower bound (operation time ÷ sum of the primitive costs it must pay). Each ratio is given twice: from the medians of the rounds, and from the best (fastest) round of each benchmark:")
	fmt.Println()
	fmt.Println("| operation | Parley median | lower bound median | ratio of medians | Parley best | lower bound best | ratio of bests | target | |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, op := range []struct {
		name   string
		terms  []term
		target float64 // 0: none
	}{
		{"SymmetricChain/impl=parley", symmetricDH, 2},
		{"SymmetricChainPQ/impl=parley", symmetricPQ, 0},
		{"PingPongDH/impl=parley", plus(symmetricDH, dhStep), 1.15},
		{"PingPongPQ/impl=parley", plus(symmetricPQ, pqStep), 0},
		{"SymmetricChainPersist/DH/impl=parley", symmetricDH, 0},
		{"SymmetricChainPersist/PQ/impl=parley", symmetricPQ, 0},
		{"PingPongPersist/DH/impl=parley", plus(symmetricDH, dhStep, restoreDH), 0},
		{"PingPongPersist/PQ/impl=parley", plus(symmetricPQ, pqStep, restorePQ), 0},
		{"SessionSetup/impl=parley", sessionSetup, 0},
	} {
		gotM, ok := med(s, op.name, costUnit)
		if !ok {
			continue
		}
		gotB, _ := best(s, op.name, costUnit)
		lbM, err := s.lowerBound(op.terms, med, costUnit)
		if err != nil {
			return err
		}
		lbB, _ := s.lowerBound(op.terms, best, costUnit)
		target, v := "—", ""
		if op.target > 0 {
			target, v = fmt.Sprintf("≤ %.2fx", op.target), verdict2(gotM/lbM <= op.target, gotB/lbB <= op.target)
		}
		fmt.Printf("| %s | %s | %s | %.2fx | %s | %s | %.2fx | %s | %s |\n", strings.TrimSuffix(op.name, "/impl=parley"),
			us(gotM), us(lbM), gotM/lbM, us(gotB), us(lbB), gotB/lbB, target, v)
	}
	fmt.Println()
	fmt.Println("Lower bounds, per message (per set-up for SessionSetup):")
	fmt.Println()
	for _, op := range []struct {
		name  string
		terms []term
	}{
		{"SymmetricChain", symmetricDH}, {"SymmetricChainPQ", symmetricPQ},
		{"PingPongDH", plus(symmetricDH, dhStep)}, {"PingPongPQ", plus(symmetricPQ, pqStep)},
		{"SymmetricChainPersist/DH", symmetricDH}, {"SymmetricChainPersist/PQ", symmetricPQ},
		{"PingPongPersist/DH", plus(symmetricDH, dhStep, restoreDH)},
		{"PingPongPersist/PQ", plus(symmetricPQ, pqStep, restorePQ)},
		{"SessionSetup", sessionSetup},
	} {
		fmt.Printf("- %s: %s\n", op.name, describe(op.terms))
	}
	fmt.Println()
	fmt.Println("Parley against go.mau.fi/libsignal v0.2.1 (speed-up = libsignal's time ÷ Parley's), from the medians and from the best rounds, and allocations per operation:")
	fmt.Println()
	fmt.Println("| operation | libsignal median | Parley median | speed-up of medians | libsignal best | Parley best | speed-up of bests | target | | allocs libsignal | allocs Parley |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, op := range []struct {
		base, parley string
		target       float64
	}{
		{"SymmetricChain/impl=libsignal", "SymmetricChain/impl=parley", 10},
		{"SymmetricChain/impl=libsignal", "SymmetricChainPQ/impl=parley", 0},
		{"PingPongDH/impl=libsignal", "PingPongDH/impl=parley", 1.7},
		{"PingPongDH/impl=libsignal", "PingPongPQ/impl=parley", 0},
		{"SymmetricChainPersist/DH/impl=libsignal", "SymmetricChainPersist/DH/impl=parley", 10},
		{"SymmetricChainPersist/DH/impl=libsignal", "SymmetricChainPersist/PQ/impl=parley", 0},
		{"PingPongPersist/DH/impl=libsignal", "PingPongPersist/DH/impl=parley", 10},
		{"PingPongPersist/DH/impl=libsignal", "PingPongPersist/PQ/impl=parley", 0},
		{"State/DH/impl=libsignal", "State/DH/impl=parley", 0},
		{"State/DH/impl=libsignal", "State/PQ/impl=parley", 0},
		{"SessionSetup/impl=libsignal", "SessionSetup/impl=parley", 0},
	} {
		bM, ok1 := med(s, op.base, costUnit)
		pM, ok2 := med(s, op.parley, costUnit)
		if !ok1 || !ok2 {
			continue
		}
		bB, _ := best(s, op.base, costUnit)
		pB, _ := best(s, op.parley, costUnit)
		ba, _ := med(s, op.base, "allocs/op")
		pa, _ := med(s, op.parley, "allocs/op")
		target, v := "—", ""
		if op.target > 0 {
			target, v = fmt.Sprintf("≥ %.1fx", op.target), verdict2(bM/pM >= op.target, bB/pB >= op.target)
		}
		fmt.Printf("| %s | %s | %s | %.2fx | %s | %s | %.2fx | %s | %s | %.0f | %.0f |\n",
			strings.TrimSuffix(op.parley, "/impl=parley"), us(bM), us(pM), bM/pM, us(bB), us(pB), bB/pB, target, v, ba, pa)
	}
	fmt.Println()
	return nil
}

// verdict2 judges a target from the medians and from the best rounds.
func verdict2(byMedian, byBest bool) string {
	switch {
	case byMedian && byBest:
		return "met"
	case byBest:
		return "met by the best rounds only"
	case byMedian:
		return "met by the medians only"
	}
	return "**not met**"
}

func relayTables(s samples) {
	fmt.Println("Relay against embedded NATS, one sender and one subscribed recipient, 256-byte payloads (median msgs/s; ratio = relay ÷ NATS):")
	fmt.Println()
	fmt.Println("| comparison | relay | NATS | ratio | target | |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	for _, c := range []struct {
		relay, nats string
		target      float64
	}{
		{"relay-durable", "jetstream", 0.5},
		{"relay-durable-async", "jetstream-async", 0.5},
		{"relay-durable", "jetstream-syncalways", 10},
		{"relay-durable-async", "jetstream-syncalways-async", 10},
		{"relay-durable-sqlite", "jetstream", 0.5},
		{"relay-durable-sqlite-async", "jetstream-async", 0.5},
		{"relay-durable-sqlite", "jetstream-syncalways", 10},
		{"relay-durable-sqlite-async", "jetstream-syncalways-async", 10},
		{"relay-memory", "nats-core", 0.25},
		{"relay-memory-async", "nats-core", 0.25},
		{"relay-memory", "nats-core-tls", 0},
		{"relay-durable", "jetstream-tls", 0},
	} {
		r, ok1 := s.median("Throughput/sys="+c.relay, "msgs/s")
		n, ok2 := s.median("Throughput/sys="+c.nats, "msgs/s")
		if !ok1 || !ok2 {
			continue
		}
		target, v := "—", ""
		if c.target > 0 {
			target, v = fmt.Sprintf("≥ %gx", c.target), verdict(r/n >= c.target)
		}
		fmt.Printf("| %s ÷ %s | %.0f | %.0f | %.3fx | %s | %s |\n", c.relay, c.nats, r, n, r/n, target, v)
	}
	// The relay package's own benchmark (64 sends in flight, blocks/s),
	// when its output is among the inputs.
	for _, c := range []struct {
		relay, nats string
		target      float64
	}{
		{"RelayThroughput/durable", "jetstream-async", 0.5},
		{"RelayThroughput/durable", "jetstream-syncalways-async", 10},
		{"RelayThroughput/memory", "nats-core", 0.25},
	} {
		r, ok1 := s.median(c.relay, "blocks/s")
		n, ok2 := s.median("Throughput/sys="+c.nats, "msgs/s")
		if !ok1 || !ok2 {
			continue
		}
		fmt.Printf("| relay package %s ÷ %s | %.0f | %.0f | %.3fx | ≥ %gx | %s |\n", c.relay, c.nats, r, n, r/n, c.target, verdict(r/n >= c.target))
	}
	fmt.Println()
	sync, _ := s.median("Fdatasync", "ns/op")
	fmt.Printf("Send-to-receive latency at 1,000 msgs/s (median of each run's p50 and p99; one fdatasync of a 4 KiB append = %s):\n\n", us(sync))
	fmt.Println("| system | p50 | p99 | p50 ÷ fdatasync | targets (durable relay: p50 ≤ 1.5x fdatasync, p99 < 1 ms) |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, sys := range []string{"relay-durable", "relay-durable-sqlite", "relay-memory", "jetstream", "jetstream-syncalways", "nats-core"} {
		p50, ok1 := s.median("LatencyAt1000/sys="+sys, "p50-µs")
		p99, ok2 := s.median("LatencyAt1000/sys="+sys, "p99-µs")
		if !ok1 || !ok2 {
			continue
		}
		v := ""
		if strings.HasPrefix(sys, "relay-durable") {
			v = fmt.Sprintf("p50: %s, p99: %s", verdict(p50*1000 <= 1.5*sync), verdict(p99 < 1000))
		}
		fmt.Printf("| %s | %.0f µs | %.0f µs | %.2fx | %s |\n", sys, p50, p99, p50*1000/sync, v)
	}
	for _, name := range []string{"RelayLatency1000/durable", "RelayLatency1000/memory"} {
		p50, ok1 := s.median(name, "p50-µs")
		p99, ok2 := s.median(name, "p99-µs")
		if !ok1 || !ok2 {
			continue
		}
		v := ""
		if strings.HasSuffix(name, "durable") {
			v = fmt.Sprintf("p50: %s, p99: %s", verdict(p50*1000 <= 1.5*sync), verdict(p99 < 1000))
		}
		fmt.Printf("| relay package %s | %.0f µs | %.0f µs | %.2fx | %s |\n", name, p50, p99, p50*1000/sync, v)
	}
	fmt.Println()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchratios:", err)
	os.Exit(1)
}
