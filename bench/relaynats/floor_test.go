package relaynats

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// The per-block floor: the work every block costs on its way from sender
// to recipient that no implementation of this design can skip, done here
// with the same primitives and sizes and nothing else (no goroutines, no
// allocation, no framing logic). Per block, in the order a block meets it:
//
//	send leg (client → relay)
//	  hmac-client   HMAC-SHA256 over the frame (the command authenticator)
//	  ws-mask       the client masks its WebSocket frame (RFC 6455 §5.3)
//	                while copying it into its write buffer, as
//	                coder/websocket does
//	  tls-seal      TLS 1.3 record protection, AES-128-GCM (RFC 8446 §5.2)
//	  tcp           one loopback TCP write and read of the record bytes
//	  tls-open      the relay opens the records
//	  copy          one copy, from the TLS buffer into the message
//	  ws-unmask     the relay unmasks the frame
//	  hmac-relay    the relay verifies the authenticator
//	delivery leg (relay → recipient)
//	  xchacha-seal  the relay re-encrypts the block, XChaCha20-Poly1305
//	  tls-seal, tcp, tls-open, copy (as above; server frames are unmasked)
//	  xchacha-open  the recipient decrypts it
//
// The relay's store is left out (memstore keeps the slice it is given;
// a durable store's cost is in BenchmarkFdatasync). Everything here runs
// on one goroutine, so its CPU time is its wall time; the ceiling on this
// machine's two cores is 2 / (µs per block) blocks per µs.

// tlsRecordPlaintext is the plaintext of one TLS record as the relay path
// makes them: coder/websocket flushes a frame in 4 KiB writes and each
// write is one record (the client gathers them into one system call, but
// the records stay 4 KiB).
const tlsRecordPlaintext = 4096

// Sizes of the TLS 1.3 record layer (RFC 8446 §5.1, §5.2).
const (
	tlsHeaderLen = 5  // TLSCiphertext header, the AEAD's additional data
	tlsTagLen    = 16 // AES-128-GCM tag
)

// frameOverhead approximates what a frame adds to its block: version,
// corr_id, entity ID, authenticator and command header (relay wire
// FrameOverhead, 99 bytes), and 4 bytes of WebSocket header.
const frameOverhead = 99 + 4

// sealedOverhead is what the delivery layer adds to a block: a 24-byte
// XChaCha20 nonce and a 16-byte Poly1305 tag.
const sealedOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// floorState holds the keys and buffers of one block size.
type floorState struct {
	block     []byte // the padded block (256-byte payload, zero padding)
	frame     []byte // send-leg frame: the block plus frameOverhead
	wire      []byte // the masked copy of frame the client writes
	delivered []byte // delivery-leg frame: sealed block plus frameOverhead
	recv      []byte // where a leg's message is copied to
	records   []byte // TLS records of one leg, sealed in place
	gcm       cipher.AEAD
	gcmNonce  [12]byte
	xchacha   cipher.AEAD
	xnonce    [chacha20poly1305.NonceSizeX]byte
	mac       hash.Hash
	maskKey   uint32
	batch     []byte // tcpBatch frames, for the tcp-batch16 step
	batched   int
	tcpW      net.Conn
	tcpR      net.Conn
}

func newFloorState(tb testing.TB, blockSize int) *floorState {
	tb.Helper()
	s := &floorState{block: make([]byte, blockSize)}
	binary.BigEndian.PutUint32(s.block, payloadSize)
	rand.Read(s.block[4 : 4+payloadSize])
	s.frame = make([]byte, blockSize+frameOverhead)
	copy(s.frame[frameOverhead:], s.block)
	s.wire = make([]byte, len(s.frame))
	s.delivered = make([]byte, blockSize+sealedOverhead+frameOverhead)
	s.recv = make([]byte, len(s.delivered))
	s.batch = make([]byte, tcpBatch*len(s.frame))
	records := (len(s.delivered) + tlsRecordPlaintext - 1) / tlsRecordPlaintext
	s.records = make([]byte, len(s.delivered)+records*(tlsHeaderLen+1+tlsTagLen))
	key := make([]byte, 16)
	rand.Read(key)
	c, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	if s.gcm, err = cipher.NewGCM(c); err != nil {
		tb.Fatal(err)
	}
	xkey := make([]byte, chacha20poly1305.KeySize)
	rand.Read(xkey)
	if s.xchacha, err = chacha20poly1305.NewX(xkey); err != nil {
		tb.Fatal(err)
	}
	s.mac = hmac.New(sha256.New, key)
	s.maskKey = 0x9e3779b9
	return s
}

// close releases the loopback TCP pair, if one was opened.
func (s *floorState) close() {
	if s.tcpW != nil {
		s.tcpW.Close()
		s.tcpR.Close()
	}
}

// openTCP connects a loopback TCP pair for the tcp step.
func (s *floorState) openTCP(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	if s.tcpW, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		tb.Fatal(err)
	}
	if s.tcpR = <-accepted; s.tcpR == nil {
		tb.Fatal("loopback accept failed")
	}
	// A batch of 16 KiB frames must fit the socket buffers, or the write
	// would wait for a read that comes after it on the same goroutine.
	s.tcpW.(*net.TCPConn).SetWriteBuffer(4 << 20)
	s.tcpR.(*net.TCPConn).SetReadBuffer(4 << 20)
}

// hmacFrame is the command authenticator over a frame.
func (s *floorState) hmacFrame(frame []byte) {
	s.mac.Reset()
	s.mac.Write(frame)
	var sum [sha256.Size]byte
	s.mac.Sum(sum[:0])
}

// mask XORs src with the masking key into dst, eight bytes at a time
// (RFC 6455 §5.3); dst and src may be the same slice. coder/websocket
// masks in assembly on amd64 and arm64, so this is an upper bound on its
// cost.
func (s *floorState) mask(dst, src []byte) {
	k := uint64(s.maskKey)<<32 | uint64(s.maskKey)
	dst = dst[:len(src)]
	for len(src) >= 8 {
		binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(src)^k)
		dst, src = dst[8:], src[8:]
	}
	for i := range src {
		dst[i] = src[i] ^ byte(s.maskKey>>(8*(i%4)))
	}
}

// tlsSeal protects msg as TLS 1.3 records of tlsRecordPlaintext bytes
// into s.records and returns the record bytes; tlsOpen reverses it into
// out. The nonce is the record sequence number XORed into a static IV
// (RFC 8446 §5.3); here the sequence number alone is enough to cost the
// same.
func (s *floorState) tlsSeal(msg []byte) []byte {
	out := s.records[:0]
	for seq := uint64(0); len(msg) > 0; seq++ {
		n := min(len(msg), tlsRecordPlaintext)
		hdr := len(out)
		out = append(out, 23, 3, 3, 0, 0) // application_data, legacy 0x0303
		binary.BigEndian.PutUint16(out[hdr+3:], uint16(n+1+tlsTagLen))
		pt := append(out[hdr+tlsHeaderLen:], msg[:n]...)
		pt = append(pt, 23) // inner content type
		binary.BigEndian.PutUint64(s.gcmNonce[4:], seq)
		out = s.gcm.Seal(out[:hdr+tlsHeaderLen], s.gcmNonce[:], pt, out[hdr:hdr+tlsHeaderLen])
		msg = msg[n:]
	}
	return out
}

func (s *floorState) tlsOpen(tb testing.TB, records, out []byte) []byte {
	out = out[:0]
	for seq := uint64(0); len(records) > 0; seq++ {
		n := int(binary.BigEndian.Uint16(records[3:5]))
		binary.BigEndian.PutUint64(s.gcmNonce[4:], seq)
		rec := records[tlsHeaderLen : tlsHeaderLen+n]
		pt, err := s.gcm.Open(rec[:0], s.gcmNonce[:], rec, records[:tlsHeaderLen])
		if err != nil {
			tb.Fatal("tls record does not open")
		}
		// The copy step: the plaintext leaves the TLS buffer.
		out = append(out, pt[:len(pt)-1]...)
		records = records[tlsHeaderLen+n:]
	}
	return out
}

// tcp writes the records through the loopback pair in one write and
// reads them back (one read if the kernel hands them over at once).
func (s *floorState) tcp(tb testing.TB, records []byte) {
	if _, err := s.tcpW.Write(records); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(s.tcpR, records); err != nil {
		tb.Fatal(err)
	}
}

// tcpBatch is the number of frames tcp-batch moves per system call: what
// a transport gathering its queued frames into one write (and a reader
// reading as much as is there) pays per frame under load.
const tcpBatch = 16

// sendLeg is client → relay: authenticate, mask, seal, (tcp,) open with
// the copy, unmask, verify.
func (s *floorState) sendLeg(tb testing.TB, withTCP bool) {
	s.hmacFrame(s.frame)
	s.mask(s.wire, s.frame)
	rec := s.tlsSeal(s.wire)
	if withTCP {
		s.tcp(tb, rec)
	}
	got := s.tlsOpen(tb, rec, s.recv)
	s.mask(got, got)
	s.hmacFrame(got)
}

// deliveryLeg is relay → recipient: seal to the recipient, TLS seal,
// (tcp,) open with the copy, open the delivery.
func (s *floorState) deliveryLeg(tb testing.TB, withTCP bool) {
	sealed := s.xchacha.Seal(s.delivered[:frameOverhead+chacha20poly1305.NonceSizeX], s.xnonce[:], s.block, nil)
	rec := s.tlsSeal(sealed)
	if withTCP {
		s.tcp(tb, rec)
	}
	got := s.tlsOpen(tb, rec, s.recv)
	ct := got[frameOverhead+chacha20poly1305.NonceSizeX:]
	if _, err := s.xchacha.Open(ct[:0], s.xnonce[:], ct, nil); err != nil {
		tb.Fatal("delivery does not open")
	}
}

// BenchmarkBlockFloor reports, for each block size, the CPU cost of the
// unavoidable per-block work (the steps above) one step at a time and in
// total, as µs per block, and the total's ceiling in blocks/s on two
// cores. step=crypto is both legs without the kernel; step=all adds one
// loopback TCP write and read per leg; step=tcp-batch16 is the kernel's
// share per frame when 16 frames share one write and read. Compare with BenchmarkBlockSize's
// cpu-µs/msg for the same block size: the difference is what the relay's
// implementation spends per block beyond this floor.
func BenchmarkBlockFloor(b *testing.B) {
	for _, size := range blockSizes {
		steps := []struct {
			name string
			tcp  bool
			run  func(tb testing.TB, s *floorState)
		}{
			{"hmac", false, func(_ testing.TB, s *floorState) { s.hmacFrame(s.frame) }},
			{"ws-mask", false, func(_ testing.TB, s *floorState) { s.mask(s.wire, s.frame) }},
			{"tls-seal+open", false, func(tb testing.TB, s *floorState) { s.tlsOpen(tb, s.tlsSeal(s.frame), s.recv) }},
			{"xchacha-seal+open", false, func(tb testing.TB, s *floorState) {
				sealed := s.xchacha.Seal(s.delivered[:0], s.xnonce[:], s.block, nil)
				if _, err := s.xchacha.Open(s.recv[:0], s.xnonce[:], sealed, nil); err != nil {
					tb.Fatal("delivery does not open")
				}
			}},
			{"copy", false, func(_ testing.TB, s *floorState) { copy(s.recv, s.frame) }},
			{"tcp", true, func(tb testing.TB, s *floorState) { s.tcp(tb, s.records[:len(s.frame)]) }},
			{"tcp-batch16", true, func(tb testing.TB, s *floorState) {
				// Once per tcpBatch blocks: the cost per block is the
				// cost of one batched write and read over tcpBatch.
				if s.batched++; s.batched%tcpBatch == 0 {
					s.tcp(tb, s.batch)
				}
			}},
			{"crypto", false, func(tb testing.TB, s *floorState) { s.sendLeg(tb, false); s.deliveryLeg(tb, false) }},
			{"all", true, func(tb testing.TB, s *floorState) { s.sendLeg(tb, true); s.deliveryLeg(tb, true) }},
		}
		for _, st := range steps {
			b.Run(fmt.Sprintf("block=%dKiB/step=%s", size>>10, st.name), func(b *testing.B) {
				s := newFloorState(b, size)
				defer s.close()
				if st.tcp {
					s.openTCP(b)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0, n := processCPU(), 0
				for b.Loop() {
					st.run(b, s)
					n++
				}
				cpu := processCPU() - cpu0
				if cpu > 0 && n > 0 {
					per := float64(cpu) / float64(n) / float64(time.Microsecond)
					b.ReportMetric(per, "cpu-µs/block")
					b.ReportMetric(2e6/per, "ceiling-blocks/s")
				}
			})
		}
	}
}

// TestBlockFloorRoundTrip checks that the floor's two legs do the real
// work: the frame survives mask, TLS and unmask intact and the delivery
// opens to the block, so the benchmark cannot be timing a no-op.
func TestBlockFloorRoundTrip(t *testing.T) {
	s := newFloorState(t, 4<<10)
	defer s.close()
	s.openTCP(t)
	s.sendLeg(t, true)
	if string(s.wire) == string(s.frame) {
		t.Fatal("the frame was not masked")
	}
	if string(s.recv[:len(s.frame)]) != string(s.frame) {
		t.Fatal("send leg did not carry the frame intact")
	}
	s.deliveryLeg(t, true)
	if got := s.recv[frameOverhead+chacha20poly1305.NonceSizeX:][:len(s.block)]; string(got) != string(s.block) {
		t.Fatal("delivery leg did not carry the block intact")
	}
	// A flipped ciphertext bit must not open: the AEADs are real.
	sealed := s.xchacha.Seal(nil, s.xnonce[:], s.block, nil)
	sealed[0] ^= 1
	if _, err := s.xchacha.Open(nil, s.xnonce[:], sealed, nil); err == nil {
		t.Fatal("a tampered delivery opened")
	}
	rec := s.tlsSeal(s.frame)
	rec[tlsHeaderLen] ^= 1
	if _, err := s.gcm.Open(nil, s.gcmNonce[:], rec[tlsHeaderLen:tlsHeaderLen+tlsRecordPlaintext+1+tlsTagLen], rec[:tlsHeaderLen]); err == nil {
		t.Fatal("a tampered TLS record opened")
	}
}
