// Package client is the Go client library of Parley's relay protocol
// (docs/PROTOCOL.md, section "Relay protocol"): it dials a relay by its
// parley:// address, pinning the relay's key fingerprint, and offers one
// method per command. Deliveries of subscribed queues arrive decrypted on
// a channel. The client reconnects by itself, with exponential backoff and
// jitter, and resubscribes every queue it was subscribed to.
package client

import (
	"context"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/parley-messenger/parley/relay/internal/wire"
)

// IDSize is the size of a queue ID.
const IDSize = wire.IDSize

// ID is a queue ID (recipient or sender), random and chosen by the relay.
type ID [IDSize]byte

// RecipientQueue is everything the recipient keeps about a queue it
// created. The agent stores it (keys with PrivateKey.Bytes) and hands the
// sender what SenderQueue returns, out of band.
type RecipientQueue struct {
	RecipientID ID
	SenderID    ID
	// RelayRecipientKey and RelaySenderKey are the relay's per-queue
	// X25519 keys for the recipient side and the sender side.
	RelayRecipientKey *ecdh.PublicKey
	RelaySenderKey    *ecdh.PublicKey
	// AuthKey authenticates the recipient's commands; DeliveryKey
	// decrypts the relay-to-recipient layer.
	AuthKey     *ecdh.PrivateKey
	DeliveryKey *ecdh.PrivateKey
}

// SenderQueue is what a sender needs: the sender ID, the relay's sender
// side key, and the sender's own authentication key (nil until the
// recipient has secured the queue with its public half).
type SenderQueue struct {
	SenderID ID
	RelayKey *ecdh.PublicKey
	AuthKey  *ecdh.PrivateKey
}

// SenderQueue returns the sender's view of q, with no sender key yet.
func (q *RecipientQueue) SenderQueue() SenderQueue {
	return SenderQueue{SenderID: q.SenderID, RelayKey: q.RelaySenderKey}
}

// Delivery is a block pushed to a subscriber, or the end of a
// subscription (Ended: another connection subscribed, or the queue was
// deleted). Seq is what Ack takes. Delivery is at least once: the same
// Seq may arrive twice.
type Delivery struct {
	Queue   ID
	Seq     uint64
	Payload []byte
	Ended   bool
}

// Options tune a Client. The zero value is ready to use.
type Options struct {
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the reconnection delay (defaults
	// 100 ms and 30 s); each attempt doubles it, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is the keep-alive period (default 30 s); a ping not
	// answered within it ends the connection.
	PingInterval time.Duration
	// DialContext opens the TCP connection (for a SOCKS5 or Tor dialer);
	// nil uses net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = 100 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 30 * time.Second
	}
	if r.PingInterval <= 0 {
		r.PingInterval = 30 * time.Second
	}
	if r.DialContext == nil {
		r.DialContext = (&net.Dialer{}).DialContext
	}
	return r
}

// Client is a connection to one relay. Its methods are safe for concurrent
// use. Close it to stop its goroutines.
type Client struct {
	addr     string
	opts     Options
	fp       [wire.FingerprintSize]byte
	hostport string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	deliveries chan Delivery
	inbox      *queue // decrypted deliveries waiting for the channel

	mu      sync.Mutex // guards the fields below
	sess    *session   // nil while disconnected
	ready   chan struct{}
	subs    map[ID]*subscribed
	blockSz int
}

type subscribed struct {
	q    *RecipientQueue
	aead cipher.AEAD
}

// Dial connects to the relay at addr (parley://<fingerprint>@host:port).
// The first connection is made before Dial returns, so a wrong address or
// fingerprint is reported at once; later ones are made in the background.
func Dial(ctx context.Context, addr string, opts *Options) (*Client, error) {
	fp, hostport, err := wire.ParseAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("relay client: %w", err)
	}
	c := &Client{
		addr:       addr,
		opts:       opts.withDefaults(),
		fp:         fp,
		hostport:   hostport,
		deliveries: make(chan Delivery),
		inbox:      newQueue(),
		ready:      make(chan struct{}),
		subs:       make(map[ID]*subscribed),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	s, err := c.dial(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.wg.Go(func() {
		// The reader of each session hands deliveries to the channel
		// too (queue.put): close it only once the sessions are gone.
		var loop sync.WaitGroup
		loop.Go(func() { c.loop(s) })
		c.dispatch()
		loop.Wait()
		close(c.deliveries)
	})
	return c, nil
}

// Close ends the connection and waits for every goroutine of the client.
// The Deliveries channel is closed.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// Deliveries returns the channel on which blocks of subscribed queues
// arrive, decrypted and unpadded. It is closed by Close. The client
// buffers deliveries it cannot hand over yet; the relay bounds how many
// it pushes unacknowledged.
func (c *Client) Deliveries() <-chan Delivery { return c.deliveries }

// MaxPayload is the largest payload Send accepts on this relay.
func (c *Client) MaxPayload() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blockSz - wire.PadHeaderSize
}

// GenerateKey returns a fresh X25519 key for a queue role.
func GenerateKey() (*ecdh.PrivateKey, error) {
	return ecdh.X25519().GenerateKey(rand.Reader)
}

// Create makes a new queue with fresh recipient keys.
func (c *Client) Create(ctx context.Context) (*RecipientQueue, error) {
	auth, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	deliv, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	cmd := &wire.Command{Type: wire.TypeCreate}
	copy(cmd.RecipientKey[:], auth.PublicKey().Bytes())
	copy(cmd.DeliveryKey[:], deliv.PublicKey().Bytes())
	resp, err := c.call(ctx, request{cmd: cmd})
	if err != nil {
		return nil, fmt.Errorf("relay client: create: %w", err)
	}
	if resp.Type != wire.TypeIDs {
		return nil, fmt.Errorf("relay client: create: unexpected %v response: %w", resp.Type, ErrMalformed)
	}
	rk, err1 := ecdh.X25519().NewPublicKey(resp.RelayRecipientKey[:])
	sk, err2 := ecdh.X25519().NewPublicKey(resp.RelaySenderKey[:])
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("relay client: create: %w", err)
	}
	return &RecipientQueue{
		RecipientID: resp.RecipientID, SenderID: resp.SenderID,
		RelayRecipientKey: rk, RelaySenderKey: sk,
		AuthKey: auth, DeliveryKey: deliv,
	}, nil
}

// Secure sets the queue's sender key; from then on only sends
// authenticated by its private half are accepted.
func (c *Client) Secure(ctx context.Context, q *RecipientQueue, senderKey *ecdh.PublicKey) error {
	cmd := &wire.Command{Type: wire.TypeSecure}
	copy(cmd.SenderKey[:], senderKey.Bytes())
	return c.simple(ctx, "secure", recipientReq(q, cmd))
}

// Send pads payload to the relay's block size and sends it. It returns
// nil once the relay has stored the block (durably, on a durable relay).
// If q.AuthKey is nil the send is unauthenticated, which only a queue
// not yet secured accepts.
func (c *Client) Send(ctx context.Context, q *SenderQueue, payload []byte) error {
	if len(payload) > c.MaxPayload() {
		return fmt.Errorf("relay client: send: %w", ErrTooLarge)
	}
	// The payload is padded straight into the frame (appendFrame).
	req := request{cmd: &wire.Command{Type: wire.TypeSend}, payload: payload, entity: q.SenderID}
	if q.AuthKey != nil {
		req.role, req.own, req.relay = roleSender, q.AuthKey, q.RelayKey
	}
	return c.simple(ctx, "send", req)
}

// Subscribe makes this client the queue's subscriber: its blocks arrive
// on Deliveries, and the subscription is renewed after a reconnection.
// A subscription from elsewhere ends this one (a Delivery with Ended).
func (c *Client) Subscribe(ctx context.Context, q *RecipientQueue) error {
	aead, err := wire.DeliveryAEAD(q.DeliveryKey, q.RelayRecipientKey)
	if err != nil {
		return fmt.Errorf("relay client: subscribe: %w", err)
	}
	c.mu.Lock()
	c.subs[q.RecipientID] = &subscribed{q: q, aead: aead}
	c.mu.Unlock()
	err = c.simple(ctx, "subscribe", recipientReq(q, &wire.Command{Type: wire.TypeSubscribe}))
	if errors.Is(err, ErrAuth) || errors.Is(err, ErrUnknownQueue) {
		c.forget(q.RecipientID)
	}
	return err
}

// Ack deletes a delivered block from the relay, which then delivers the
// next one. ErrNoBlock means it was already gone (a duplicate delivery).
func (c *Client) Ack(ctx context.Context, q *RecipientQueue, seq uint64) error {
	return c.simple(ctx, "ack", recipientReq(q, &wire.Command{Type: wire.TypeAck, Seq: seq}))
}

// Get fetches the oldest waiting block without subscribing, or returns
// ErrNoBlock. It stays on the relay until acknowledged.
func (c *Client) Get(ctx context.Context, q *RecipientQueue) (Delivery, error) {
	resp, err := c.call(ctx, recipientReq(q, &wire.Command{Type: wire.TypeGet}))
	if err != nil {
		return Delivery{}, fmt.Errorf("relay client: get: %w", err)
	}
	if resp.Type != wire.TypeBlock {
		return Delivery{}, fmt.Errorf("relay client: get: unexpected %v response: %w", resp.Type, ErrMalformed)
	}
	aead, err := wire.DeliveryAEAD(q.DeliveryKey, q.RelayRecipientKey)
	if err != nil {
		return Delivery{}, fmt.Errorf("relay client: get: %w", err)
	}
	payload, err := open(aead, q.RecipientID, resp.Block)
	if err != nil {
		return Delivery{}, fmt.Errorf("relay client: get: %w", err)
	}
	return Delivery{Queue: q.RecipientID, Seq: resp.Seq, Payload: payload}, nil
}

// Delete removes the queue and every block in it.
func (c *Client) Delete(ctx context.Context, q *RecipientQueue) error {
	err := c.simple(ctx, "delete", recipientReq(q, &wire.Command{Type: wire.TypeDelete}))
	if err == nil {
		c.forget(q.RecipientID)
	}
	return err
}

// Ping sends a keep-alive and waits for the answer.
func (c *Client) Ping(ctx context.Context) error {
	resp, err := c.call(ctx, request{cmd: &wire.Command{Type: wire.TypePing}})
	if err != nil {
		return fmt.Errorf("relay client: ping: %w", err)
	}
	if resp.Type != wire.TypePong {
		return fmt.Errorf("relay client: ping: unexpected %v response: %w", resp.Type, ErrMalformed)
	}
	return nil
}

func (c *Client) forget(id ID) {
	c.mu.Lock()
	delete(c.subs, id)
	c.mu.Unlock()
}

func recipientReq(q *RecipientQueue, cmd *wire.Command) request {
	return request{cmd: cmd, entity: q.RecipientID, role: roleRecipient, own: q.AuthKey, relay: q.RelayRecipientKey}
}

// simple runs a command whose success is an ok response.
func (c *Client) simple(ctx context.Context, what string, req request) error {
	resp, err := c.call(ctx, req)
	if err != nil {
		return fmt.Errorf("relay client: %s: %w", what, err)
	}
	if resp.Type != wire.TypeOK {
		return fmt.Errorf("relay client: %s: unexpected %v response: %w", what, resp.Type, ErrMalformed)
	}
	return nil
}

// open decrypts a delivered block in place (sealed's memory is not used
// again) and returns its payload, which aliases sealed.
func open(aead cipher.AEAD, id ID, sealed []byte) ([]byte, error) {
	block, err := wire.OpenInPlace(aead, id[:], sealed)
	if err != nil {
		return nil, err
	}
	return wire.Unpad(block)
}
