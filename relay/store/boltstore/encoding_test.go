package boltstore

import (
	"bytes"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

func sampleQueues() []store.Queue {
	var a, b store.Queue
	for i := range a.RecipientID {
		a.RecipientID[i], a.SenderID[i] = byte(i), byte(0x80+i)
	}
	a.RecipientKey = bytes.Repeat([]byte{1}, 32)
	a.DeliveryKey = bytes.Repeat([]byte{2}, 1184)
	a.Created = time.Date(2026, 11, 26, 12, 0, 0, 123, time.UTC)
	b = a
	b.SenderKey = bytes.Repeat([]byte{3}, 32)
	b.Created = time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC) // before the Unix epoch
	return []store.Queue{a, b, {}}
}

func TestQueueRecordRoundTrip(t *testing.T) {
	for _, q := range sampleQueues() {
		rec, err := encodeQueue(&q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeQueue(q.RecipientID, rec)
		if err != nil {
			t.Fatal(err)
		}
		if got.SenderID != q.SenderID || !bytes.Equal(got.RecipientKey, q.RecipientKey) ||
			!bytes.Equal(got.SenderKey, q.SenderKey) || !bytes.Equal(got.DeliveryKey, q.DeliveryKey) ||
			!got.Created.Equal(q.Created) {
			t.Errorf("round trip: got %+v, want %+v", got, q)
		}
	}
}

func TestQueueRecordRejects(t *testing.T) {
	q := sampleQueues()[1]
	rec, err := encodeQueue(&q)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"Empty":           nil,
		"WrongVersion":    append([]byte{layoutVersion + 1}, rec[1:]...),
		"Truncated":       rec[:len(rec)-1],
		"TrailingByte":    append(bytes.Clone(rec), 0),
		"ShortSenderID":   rec[:1+store.IDSize-1],
		"KeyLengthTooBig": append(bytes.Clone(rec[:1+store.IDSize+timeSize]), 0xff, 0xff),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeQueue(q.RecipientID, b); err == nil {
				t.Error("decoded")
			}
		})
	}
	long := q
	long.DeliveryKey = make([]byte, maxKeyLen+1)
	if _, err := encodeQueue(&long); err == nil {
		t.Error("encoded a key longer than maxKeyLen")
	}
}

// FuzzQueueRecord checks that whatever decodes as a queue record encodes
// back to the same bytes: one record, one encoding.
func FuzzQueueRecord(f *testing.F) {
	for _, q := range sampleQueues() {
		rec, err := encodeQueue(&q)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		q, err := decodeQueue(store.ID{}, rec)
		if err != nil {
			return
		}
		again, err := encodeQueue(&q)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if !bytes.Equal(again, rec) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, rec)
		}
	})
}

// FuzzQueueState does the same for the per-queue counters.
func FuzzQueueState(f *testing.F) {
	f.Add(queueState{next: 1}.encode())
	f.Add(queueState{next: 1 << 40, count: 7}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		if !bytes.Equal(st.encode(), b) {
			t.Fatalf("re-encoding differs: %x vs %x", st.encode(), b)
		}
	})
}
