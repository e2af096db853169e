package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/relay/client"
)

// ProfileFile is the name of the profile's database inside its home
// directory.
const ProfileFile = "profile.db"

// lockName is the lock file beside it: one agent per profile, because a
// second one would take over the first one's queue subscriptions.
const lockName = "agent.lock"

// Errors a caller branches on.
var (
	ErrNoProfile         = errors.New("agent: no profile here (run init first)")
	ErrProfileExists     = errors.New("agent: a profile already exists here")
	ErrWrongPassphrase   = localstore.ErrWrongPassphrase
	ErrEmptyPassphrase   = localstore.ErrEmptyPassphrase
	ErrBadInvitation     = errors.New("agent: not a valid invitation link")
	ErrInvitationExpired = errors.New("agent: the invitation has expired")
	ErrInvitationUsed    = errors.New("agent: this invitation was already accepted")
	ErrNotEnoughRelays   = errors.New("agent: not enough reachable relays (add at least two with relays add)")
	ErrUnknownContact    = errors.New("agent: no such contact")
	ErrAmbiguousContact  = errors.New("agent: more than one contact matches")
	ErrNotConnected      = errors.New("agent: the contact has not completed the connection yet")
	ErrIdentityChanged   = errors.New("agent: the contact's identity key changed; verify it before sending")
	ErrClosed            = errors.New("agent: closed")
	// ErrProfileInUse: another agent (another process, such as a running
	// daemon) has this profile open.
	ErrProfileInUse = errors.New("agent: the profile is in use by another agent (is a parley daemon running?)")
)

// Options tune an Agent. The zero value is the safe default.
type Options struct {
	// KDF is the Argon2id setting for a new profile (localstore.DefaultKDF
	// when zero).
	KDF localstore.KDFParams
	// AllowEmptyPassphrase permits an empty passphrase; Warnings says so.
	AllowEmptyPassphrase bool
	// MinRelays is how many relays each direction of a connection uses
	// (default and minimum 2).
	MinRelays int
	// InvitationValidity is how long an invitation may be accepted
	// (default 7 days).
	InvitationValidity time.Duration
	// RetryMin and RetryMax bound the outbox's and the relay dialer's
	// exponential backoff (defaults 1 s and 5 min).
	RetryMin, RetryMax time.Duration
	// SendTimeout bounds one send or dial attempt (default 15 s).
	SendTimeout time.Duration
	// ExpiryInterval is how often disappearing messages are removed
	// (default 10 s): a message outlives its timer by at most this much.
	ExpiryInterval time.Duration
	// Client tunes the relay connections.
	Client *client.Options
	// Logger receives diagnostics; nil discards them. It never receives
	// message contents or keys.
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.MinRelays < 2 {
		r.MinRelays = 2
	}
	if r.InvitationValidity <= 0 {
		r.InvitationValidity = 7 * 24 * time.Hour
	}
	if r.RetryMin <= 0 {
		r.RetryMin = time.Second
	}
	if r.RetryMax <= 0 {
		r.RetryMax = 5 * time.Minute
	}
	if r.RetryMax < r.RetryMin {
		r.RetryMax = r.RetryMin
	}
	if r.SendTimeout <= 0 {
		r.SendTimeout = 15 * time.Second
	}
	if r.ExpiryInterval <= 0 {
		r.ExpiryInterval = 10 * time.Second
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	return r
}

// ContactID names a contact locally. It is random and never leaves the
// device.
type ContactID string

// MessageID names a message in both conversations' views: the sender
// chooses it at random and receipts refer to it.
type MessageID string

// Status is where an outgoing message is, or that an incoming one arrived.
type Status int

// Message statuses, in the order they advance.
const (
	StatusPending   Status = iota // in the outbox, no relay has it yet
	StatusSent                    // at least one relay stored it
	StatusDelivered               // the contact's agent received it
	StatusRead                    // outgoing: the contact read it (if it sends read receipts); incoming: MarkRead was called
	StatusReceived                // an incoming message not yet marked read
)

func (s Status) String() string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusSent:
		return "sent"
	case StatusDelivered:
		return "delivered"
	case StatusRead:
		return "read"
	case StatusReceived:
		return "received"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Contact is a contact as the user sees it.
type Contact struct {
	ID ContactID
	// Alias is the local name the user chose; DisplayName the one the
	// contact sent (end-to-end encrypted).
	Alias, DisplayName string
	// Identity is the contact's public identity.
	Identity identity.PublicIdentity
	// Verified: the user compared the safety number.
	Verified bool
	// IdentityChanged: the contact now presents another identity key
	// than the one first seen; sending is refused until Verify.
	IdentityChanged bool
	// Connected: the contact's side of the connection is complete (a
	// message from it has been decrypted).
	Connected bool
	// DisappearAfter is the conversation's disappearing-message timer
	// (zero: off).
	DisappearAfter time.Duration
	Created        time.Time
}

// Name is the alias if set, else the display name, else the ID.
func (c Contact) Name() string {
	switch {
	case c.Alias != "":
		return c.Alias
	case c.DisplayName != "":
		return c.DisplayName
	}
	return string(c.ID)
}

// Message is one message of a conversation.
type Message struct {
	ID       MessageID
	Contact  ContactID
	Outgoing bool
	Text     string
	Status   Status
	// Order is the position in the conversation (increasing).
	Order uint64
	// Sent is the sender's clock; Received is this device's clock when
	// the message was written (outgoing) or stored (incoming).
	Sent, Received time.Time
	// ExpiresAt is when a disappearing message is deleted (zero: never).
	ExpiresAt time.Time
}

// Agent is an open profile. Its methods are safe for concurrent use.
type Agent struct {
	home  string
	opts  Options
	store *localstore.Store
	id    *identity.Identity
	lock  *os.File

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events *eventQueue
	kick   chan struct{} // wakes the outbox loop

	// op serializes operations that read and write sessions, prekeys,
	// contacts and the outbox, so that each is one consistent store
	// transaction. Events are emitted after it is released.
	op sync.Mutex
	// nextExpiry is the earliest expiry among the stored messages, as the
	// last expiry pass left them and later writes lowered it (zero: none
	// expires); it means nothing until expiryKnown. Guarded by op.
	nextExpiry  time.Time
	expiryKnown bool

	mu     sync.Mutex // guards relays and closed
	relays map[string]*relayConn
	closed bool

	// In-memory caches of the message path (cache.go).
	keys   keyCache
	recent recentSet
	queues queueCache

	// outboxChanged is notified after every commit that may have marked
	// outbox targets done or failed (Flush waits on it).
	outboxChanged signal
}

func profilePath(home string) string { return filepath.Join(home, ProfileFile) }

// Init creates a profile in home: a fresh device identity, its prekeys
// and the display name (which only contacts ever see). It returns the
// store's warnings (an empty passphrase).
func Init(home string, passphrase []byte, displayName string, opts *Options) ([]string, error) {
	o := opts.withDefaults()
	if len(displayName) > maxNameLen {
		return nil, fmt.Errorf("agent: display name longer than %d bytes", maxNameLen)
	}
	if _, err := os.Stat(profilePath(home)); err == nil {
		return nil, ErrProfileExists
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("agent: create home: %w", err)
	}
	st, err := localstore.Open(profilePath(home), passphrase, &localstore.Options{KDF: o.KDF, AllowEmptyPassphrase: o.AllowEmptyPassphrase})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	id, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	pk, err := identity.NewPrekeyStore(id)
	if err != nil {
		return nil, err
	}
	idb, err := id.MarshalBinary()
	if err != nil {
		return nil, err
	}
	pkb, err := pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	err = st.Update(func(tx *localstore.Tx) error {
		if _, err := tx.Get(tblProfile, keyIdentity); err == nil {
			return ErrProfileExists
		}
		if err := tx.Put(tblProfile, keyIdentity, idb); err != nil {
			return err
		}
		if err := tx.Put(tblProfile, keyPrekeys, pkb); err != nil {
			return err
		}
		return putJSON(tx, tblProfile, keySettings, Settings{DisplayName: displayName, ReadReceipts: true})
	})
	if err != nil {
		return nil, err
	}
	return st.Warnings(), nil
}

// Open opens the profile in home and starts the agent: it connects to
// every relay it uses, subscribes to its queues and drains its outbox in
// the background. Close stops it.
func Open(home string, passphrase []byte, opts *Options) (*Agent, error) {
	o := opts.withDefaults()
	if _, err := os.Stat(profilePath(home)); err != nil {
		return nil, ErrNoProfile
	}
	st, err := localstore.Open(profilePath(home), passphrase, &localstore.Options{KDF: o.KDF, AllowEmptyPassphrase: o.AllowEmptyPassphrase})
	if err != nil {
		return nil, err
	}
	var id *identity.Identity
	var relays []string
	err = st.View(func(tx *localstore.Tx) error {
		b, err := tx.Get(tblProfile, keyIdentity)
		if errors.Is(err, localstore.ErrNotFound) {
			return ErrNoProfile
		}
		if err != nil {
			return err
		}
		if id, err = identity.ParseIdentity(b); err != nil {
			return fmt.Errorf("agent: stored identity: %w", err)
		}
		relays, err = usedRelays(tx)
		return err
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(home, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		if err = lockFile(lock); err != nil {
			lock.Close()
		}
	}
	if err != nil {
		st.Close()
		if errors.Is(err, ErrProfileInUse) {
			return nil, err
		}
		return nil, fmt.Errorf("agent: lock the profile: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		home: home, opts: o, store: st, id: id, lock: lock,
		ctx: ctx, cancel: cancel,
		events: newEventQueue(),
		kick:   make(chan struct{}, 1),
		relays: make(map[string]*relayConn),
	}
	a.wg.Go(func() { a.events.run(ctx) })
	a.wg.Go(a.outboxLoop)
	a.wg.Go(a.expiryLoop)
	a.mu.Lock()
	for _, r := range relays {
		a.ensureRelayLocked(r)
	}
	a.mu.Unlock()
	return a, nil
}

// Close stops every goroutine of the agent, closes its relay connections
// and the store. Events not yet taken from Events are dropped and the
// channel is closed.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
	err := a.store.Close()
	return errors.Join(err, a.lock.Close()) // closing releases the lock
}

// Events returns the agent's one event channel. It is closed by Close.
// Take events promptly: they queue without bound in memory meanwhile.
func (a *Agent) Events() <-chan Event { return a.events.out }

// Warnings returns what the user should be told about this profile (an
// empty passphrase).
func (a *Agent) Warnings() []string { return a.store.Warnings() }

// Identity returns this device's public identity.
func (a *Agent) Identity() identity.PublicIdentity { return a.id.Public() }

// Settings returns the profile's settings.
func (a *Agent) Settings() (Settings, error) {
	var s Settings
	err := a.store.View(func(tx *localstore.Tx) error { return getJSON(tx, tblProfile, keySettings, &s) })
	return s, err
}

// UpdateSettings changes the profile's settings with fn. A new display
// name is sent, end-to-end encrypted, to every contact.
func (a *Agent) UpdateSettings(fn func(*Settings)) error {
	a.op.Lock()
	defer a.wake()
	defer a.op.Unlock()
	return a.store.Update(func(tx *localstore.Tx) error {
		var s Settings
		if err := getJSON(tx, tblProfile, keySettings, &s); err != nil {
			return err
		}
		oldName := s.DisplayName
		fn(&s)
		if len(s.DisplayName) > maxNameLen {
			return fmt.Errorf("agent: display name longer than %d bytes", maxNameLen)
		}
		if err := putJSON(tx, tblProfile, keySettings, s); err != nil {
			return err
		}
		if s.DisplayName == oldName {
			return nil
		}
		var cs []contactRecord
		err := tx.List(tblContacts, func(_, v []byte) error {
			var c contactRecord
			if err := unmarshalJSON(v, &c); err != nil {
				return err
			}
			cs = append(cs, c)
			return nil
		})
		if err != nil {
			return err
		}
		for i := range cs {
			if err := a.sendLocked(tx, &cs[i], kindHello, (&hello{Name: s.DisplayName}).marshal(), ""); err != nil {
				return err
			}
		}
		return nil
	})
}

func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// wake nudges the outbox loop.
func (a *Agent) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// sleep waits d or until the agent closes; false if it closed.
func (a *Agent) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a.ctx.Done():
		return false
	}
}

// backoff is the delay before attempt tries+1: lo, doubled per failed
// attempt, capped at hi.
func backoff(lo, hi time.Duration, tries int) time.Duration {
	d := lo
	for i := 1; i < tries && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
