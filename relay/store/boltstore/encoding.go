package boltstore

import (
	"encoding/binary"
	"errors"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/relay/store"
)

// On-disk layout, version 1. Every bucket is flat; keys sort so that the
// operations the relay does often are a seek and a short scan.
//
//	meta    "version"            -> layoutVersion
//	meta    "boots"              -> times opened (8), absent before the first
//	queues  recipientID          -> queue record (encodeQueue)
//	senders senderID             -> recipientID
//	state   recipientID          -> next seq (8) || blocks waiting (8)
//	blocks  recipientID || seq   -> received (8) || data
//	expiry  received || recipientID || seq -> empty
//
// Integers are big-endian so that byte order is numeric order; times are
// Unix nanoseconds with the sign bit flipped (sortableTime) so that byte
// order is time order, negative times included.
var (
	bucketMeta    = []byte("meta")
	bucketQueues  = []byte("queues")
	bucketSenders = []byte("senders")
	bucketState   = []byte("state")
	bucketBlocks  = []byte("blocks")
	bucketExpiry  = []byte("expiry")
	keyVersion    = []byte("version")
	keyBoots      = []byte("boots")
)

// layoutVersion is the version of the layout above and of the queue
// record's version byte.
const layoutVersion = 1

const (
	seqSize      = 8
	timeSize     = 8
	stateSize    = 16
	blockKeySize = store.IDSize + seqSize
	expiryKey    = timeSize + store.IDSize + seqSize
	// maxKeyLen bounds each key in a queue record; keys are public key
	// material, far shorter.
	maxKeyLen = 1 << 12
)

var errBadRecord = errors.New("boltstore: malformed record")

// sortableTime encodes t to the nanosecond for years 1678 to 2262 (the
// range of UnixNano). The zero time, which UnixNano cannot represent, is
// encoded as 0 (otherwise the encoding of an instant in 1677), so that it
// survives a round trip.
func sortableTime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano()) ^ 1<<63
}

func fromSortable(u uint64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(u^1<<63))
}

// encodeQueue encodes everything about q except its recipient ID (the
// record's key):
//
//	struct {
//	    uint8 version = 1;
//	    opaque sender_id[24];
//	    uint64 created;            // sortableTime
//	    opaque recipient_key<0..2^16-1>;
//	    opaque sender_key<0..2^16-1>;
//	    opaque delivery_key<0..2^16-1>;
//	} QueueRecord;
func encodeQueue(q *store.Queue) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, 1+store.IDSize+timeSize+6+len(q.RecipientKey)+len(q.SenderKey)+len(q.DeliveryKey)))
	b.AddUint8(layoutVersion)
	b.AddBytes(q.SenderID[:])
	b.AddUint64(sortableTime(q.Created))
	for _, k := range [][]byte{q.RecipientKey, q.SenderKey, q.DeliveryKey} {
		if len(k) > maxKeyLen {
			return nil, errors.New("boltstore: queue key too long")
		}
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k) })
	}
	return b.Bytes()
}

// decodeQueue is the inverse of encodeQueue. It copies every byte it
// returns, since bbolt's values live only as long as their transaction.
func decodeQueue(recipient store.ID, rec []byte) (store.Queue, error) {
	q := store.Queue{RecipientID: recipient}
	s := cryptobyte.String(rec)
	var (
		version   uint8
		sender    []byte
		created   uint64
		rk, sk, d cryptobyte.String
	)
	if !s.ReadUint8(&version) || version != layoutVersion ||
		!s.ReadBytes(&sender, store.IDSize) ||
		!s.ReadUint64(&created) ||
		!s.ReadUint16LengthPrefixed(&rk) || len(rk) > maxKeyLen ||
		!s.ReadUint16LengthPrefixed(&sk) || len(sk) > maxKeyLen ||
		!s.ReadUint16LengthPrefixed(&d) || len(d) > maxKeyLen ||
		!s.Empty() {
		return store.Queue{}, errBadRecord
	}
	copy(q.SenderID[:], sender)
	q.Created = fromSortable(created)
	q.RecipientKey = cloneOrNil(rk)
	q.SenderKey = cloneOrNil(sk)
	q.DeliveryKey = cloneOrNil(d)
	return q, nil
}

func cloneOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// queueState is the mutable part of a queue, kept apart from its record
// so that an Append rewrites 16 bytes, not the keys.
type queueState struct {
	next  uint64 // the seq the next Append assigns; starts at 1
	count uint64 // blocks waiting
}

func (st queueState) encode() []byte {
	var b [stateSize]byte
	binary.BigEndian.PutUint64(b[:8], st.next)
	binary.BigEndian.PutUint64(b[8:], st.count)
	return b[:]
}

func decodeState(b []byte) (queueState, error) {
	if len(b) != stateSize {
		return queueState{}, errBadRecord
	}
	return queueState{next: binary.BigEndian.Uint64(b[:8]), count: binary.BigEndian.Uint64(b[8:])}, nil
}

func blockKey(recipient store.ID, seq uint64) []byte {
	k := make([]byte, blockKeySize)
	copy(k, recipient[:])
	binary.BigEndian.PutUint64(k[store.IDSize:], seq)
	return k
}

func expiryKeyOf(received uint64, recipient store.ID, seq uint64) []byte {
	k := make([]byte, expiryKey)
	binary.BigEndian.PutUint64(k, received)
	copy(k[timeSize:], recipient[:])
	binary.BigEndian.PutUint64(k[timeSize+store.IDSize:], seq)
	return k
}

// blockValue is received (sortableTime) || data.
func blockValue(received uint64, data []byte) []byte {
	v := make([]byte, timeSize+len(data))
	binary.BigEndian.PutUint64(v, received)
	copy(v[timeSize:], data)
	return v
}

func splitBlockValue(v []byte) (received uint64, data []byte, err error) {
	if len(v) < timeSize {
		return 0, nil, errBadRecord
	}
	return binary.BigEndian.Uint64(v), v[timeSize:], nil
}
