package agent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
)

// Tables of the local store. Records are JSON inside localstore's sealed
// values: they never leave the device, and localstore authenticates and
// encrypts them (the wire formats, which a peer or relay sees, are binary
// with cryptobyte; see wire.go).
const (
	tblProfile  = "profile"  // identity, prekeys, settings
	tblRelays   = "relays"   // address → relayRecord
	tblInvites  = "invites"  // invitation ID → inviteRecord
	tblAccepted = "accepted" // SHA-256 of an accepted link → time
	tblQueues   = "rqueues"  // relay address || recipient ID → queueRecord
	tblContacts = "contacts" // contact ID → contactRecord
	tblSessions = "sessions" // contact ID → ratchet.Session encoding
	tblMessages = "messages" // group contact ID; message ID → messageRecord
	tblOutbox   = "outbox"   // outbox ID → outboxRecord
	tblSeen     = "seen"     // envelope SHA-256 → first-seen time
	tblCounters = "counters" // name → uint64
)

// Keys in tblProfile.
var (
	keyIdentity = []byte("identity")
	keyPrekeys  = []byte("prekeys")
	keySettings = []byte("settings")
)

// Settings are the profile's preferences.
type Settings struct {
	// DisplayName is sent, end-to-end encrypted, to each new contact.
	DisplayName string
	// ReadReceipts: send read receipts (on by default).
	ReadReceipts bool
	// TypingIndicators: send typing indicators (off by default).
	TypingIndicators bool
}

type relayRecord struct {
	Added time.Time
}

type inviteRecord struct {
	ID      string
	Alias   string
	Expires time.Time
	HPKEKey []byte   // HPKE private key (RFC 9180 SerializePrivateKey)
	Queues  [][]byte // keys of tblQueues, in invitation order
	// Data is the queue holding the sealed invitation of a short link
	// (never subscribed; deleted with the invitation).
	Data *queueRecord `json:",omitempty"`
}

const (
	ownerInvite  = "invite"
	ownerContact = "contact"
)

type queueRecord struct {
	Relay             string
	RecipientID       []byte
	SenderID          []byte
	RelayRecipientKey []byte
	RelaySenderKey    []byte
	AuthKey           []byte
	DeliveryKey       []byte
	Owner             string // ownerInvite or ownerContact
	OwnerID           string
}

type contactRecord struct {
	ID              ContactID
	Alias           string
	DisplayName     string
	Identity        []byte // identity.PublicIdentity encoding
	Verified        bool
	IdentityChanged bool
	Connected       bool // a message from the contact has been decrypted
	Disappear       time.Duration
	Created         time.Time
	SendQueues      []sendQueue
	OldQueues       [][]byte // our queues replaced by rotation, deleted once the new ones are used
}

type messageRecord struct {
	ID        MessageID
	Contact   ContactID
	Outgoing  bool
	Text      string
	Status    Status
	Order     uint64
	Sent      time.Time
	Received  time.Time
	ExpiresAt time.Time
}

type outboxTarget struct {
	Queue   sendQueue
	Done    bool
	Failed  bool // refused for good (queue secured by someone else, or gone)
	Tries   int
	NextTry time.Time
}

type outboxRecord struct {
	ID      string
	Seq     uint64
	Contact ContactID
	Message MessageID // the text message this carries, if any
	Payload []byte    // the envelope, encrypted once
	Targets []outboxTarget
	Created time.Time
}

func getJSON(tx *localstore.Tx, table string, key []byte, v any) error {
	b, err := tx.Get(table, key)
	if err != nil {
		return err
	}
	if err := unmarshalJSON(b, v); err != nil {
		return fmt.Errorf("agent: %s record: %w", table, err)
	}
	return nil
}

func putJSON(tx *localstore.Tx, table string, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(table, key, b)
}

func putJSONGrouped(tx *localstore.Tx, table string, group, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.PutGrouped(table, group, key, b)
}

// nextCounter returns the next value of a named counter (from 1).
func nextCounter(tx *localstore.Tx, name string) (uint64, error) {
	var n uint64
	if err := getJSON(tx, tblCounters, []byte(name), &n); err != nil && err != localstore.ErrNotFound {
		return 0, err
	}
	n++
	return n, putJSON(tx, tblCounters, []byte(name), n)
}

func queueKey(relay string, rid []byte) []byte {
	return append(append([]byte(relay), 0), rid...)
}

func unmarshalJSON(b []byte, v any) error { return json.Unmarshal(b, v) }
