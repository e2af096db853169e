// Package wire is the relay protocol's binary codec: frames, commands,
// error codes, padding, and the small cryptographic steps both sides of the
// protocol share (command authenticators, the delivery layer). The layout
// is written down in docs/PROTOCOL.md, section "Relay protocol", in the TLS
// presentation language (RFC 8446 §3); it is encoded with
// golang.org/x/crypto/cryptobyte.
package wire

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Version is the protocol version this package speaks. Every frame begins
// with it (docs/PROTOCOL.md "Relay protocol: frames").
const Version uint8 = 1

// Sizes fixed by the protocol.
const (
	// IDSize is the size of a queue ID (recipient or sender).
	IDSize = 24
	// KeySize is the size of an X25519 public key (RFC 7748 §6.1).
	KeySize = 32
	// MACSize is the size of a command authenticator (HMAC-SHA256).
	MACSize = 32
	// DefaultBlockSize is the fixed block size every block is padded to.
	// 16 KiB, as SimpleX's SMP transport blocks: large enough for a
	// ratchet message carrying an ML-KEM-768 ciphertext and a text
	// message or file chunk, small enough that padding a short message
	// costs little on the wire.
	DefaultBlockSize = 16384
	// MinBlockSize is the smallest block size a relay may configure.
	MinBlockSize = 1024
	// MaxBlockSize is the largest: a block must fit a uint24 vector.
	MaxBlockSize = 1 << 20
	// PadHeaderSize is the length prefix inside a padded block.
	PadHeaderSize = 4
	// NonceSize and TagSize are those of XChaCha20-Poly1305
	// (draft-irtf-cfrg-xchacha §2).
	NonceSize = 24
	TagSize   = 16
	// SealedOverhead is what the delivery layer adds to a block.
	SealedOverhead = NonceSize + TagSize
	// FrameOverhead bounds everything in a frame except a block.
	FrameOverhead = 1 + 8 + 1 + IDSize + 1 + MACSize + 3 + 1 + 8 + 3
)

// Type is a command or response type.
type Type uint8

// Client commands (docs/PROTOCOL.md "Relay protocol: commands").
const (
	TypeCreate    Type = 0x01
	TypeSecure    Type = 0x02
	TypeSend      Type = 0x03
	TypeSubscribe Type = 0x04
	TypeAck       Type = 0x05
	TypeGet       Type = 0x06
	TypeDelete    Type = 0x07
	TypePing      Type = 0x08
)

// Relay responses and notifications.
const (
	TypeHello Type = 0x81
	TypeOK    Type = 0x82
	TypeIDs   Type = 0x83
	TypeBlock Type = 0x84
	TypeEnd   Type = 0x85
	TypeError Type = 0x86
	TypePong  Type = 0x87
)

func (t Type) String() string {
	switch t {
	case TypeCreate:
		return "create"
	case TypeSecure:
		return "secure"
	case TypeSend:
		return "send"
	case TypeSubscribe:
		return "subscribe"
	case TypeAck:
		return "ack"
	case TypeGet:
		return "get"
	case TypeDelete:
		return "delete"
	case TypePing:
		return "ping"
	case TypeHello:
		return "hello"
	case TypeOK:
		return "ok"
	case TypeIDs:
		return "ids"
	case TypeBlock:
		return "block"
	case TypeEnd:
		return "end"
	case TypeError:
		return "error"
	case TypePong:
		return "pong"
	}
	return fmt.Sprintf("type(%#x)", uint8(t))
}

// Code is a protocol error code carried by an error response.
type Code uint8

// Protocol error codes. Each limit and each class of bad command has its
// own code so that a client can tell what to do next.
const (
	CodeAuth              Code = 1  // authenticator missing, wrong or replayed
	CodeUnknownQueue      Code = 2  // no queue with this ID
	CodeNoBlock           Code = 3  // no block waiting (get, ack)
	CodeQueueFull         Code = 4  // blocks per queue limit reached
	CodeTooLarge          Code = 5  // block larger than the block size
	CodeRateLimited       Code = 6  // commands per second per connection exceeded
	CodeTooManyConnection Code = 7  // connections in total exceeded
	CodeUnknownCommand    Code = 8  // command type not known
	CodeMalformed         Code = 9  // frame or command does not parse
	CodeVersion           Code = 10 // protocol version not supported
	CodeInternal          Code = 11 // the relay failed (storage error)
)

func (c Code) String() string {
	switch c {
	case CodeAuth:
		return "bad authentication"
	case CodeUnknownQueue:
		return "unknown queue"
	case CodeNoBlock:
		return "no block"
	case CodeQueueFull:
		return "queue full"
	case CodeTooLarge:
		return "block too large"
	case CodeRateLimited:
		return "rate limited"
	case CodeTooManyConnection:
		return "too many connections"
	case CodeUnknownCommand:
		return "unknown command"
	case CodeMalformed:
		return "malformed frame"
	case CodeVersion:
		return "unsupported version"
	case CodeInternal:
		return "internal relay error"
	}
	return fmt.Sprintf("error code %d", uint8(c))
}

// Decoding errors.
var (
	ErrMalformed      = errors.New("relay wire: malformed")
	ErrVersion        = errors.New("relay wire: unsupported version")
	ErrUnknownCommand = errors.New("relay wire: unknown command")
)

// Frame is the unit carried by one WebSocket binary message:
//
//	struct {
//	    uint8 version;
//	    uint64 corr_id;
//	    opaque entity_id<0..255>;
//	    opaque authenticator<0..255>;
//	    opaque command<0..2^24-1>;
//	} Frame;
//
// corr_id correlates a response with its command (zero for notifications);
// on a connection a client's authenticated commands carry strictly
// increasing corr_ids, which is the replay guard within a connection.
type Frame struct {
	Version       uint8
	CorrID        uint64
	EntityID      []byte
	Authenticator []byte
	Command       []byte
}

// Marshal encodes f.
func (f *Frame) Marshal() ([]byte, error) {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, 1+8+2+len(f.EntityID)+len(f.Authenticator)+3+len(f.Command)))
	f.build(b, true)
	return b.Bytes()
}

// Signed returns the bytes a command authenticator covers: the frame
// without its authenticator field.
//
//	struct {
//	    uint8 version;
//	    uint64 corr_id;
//	    opaque entity_id<0..255>;
//	    opaque command<0..2^24-1>;
//	} SignedFrame;
func (f *Frame) Signed() ([]byte, error) {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, 1+8+1+len(f.EntityID)+3+len(f.Command)))
	f.build(b, false)
	return b.Bytes()
}

func (f *Frame) build(b *cryptobyte.Builder, withAuth bool) {
	b.AddUint8(f.Version)
	b.AddUint64(f.CorrID)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.EntityID) })
	if withAuth {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.Authenticator) })
	}
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.Command) })
}

// ParseFrame decodes one frame. The version is checked first (cheapest),
// then the structure; trailing bytes are refused. The returned slices
// alias data.
func ParseFrame(data []byte) (Frame, error) {
	var f Frame
	s := cryptobyte.String(data)
	if !s.ReadUint8(&f.Version) {
		return Frame{}, fmt.Errorf("relay wire: frame: %w", ErrMalformed)
	}
	if f.Version != Version {
		return Frame{}, fmt.Errorf("relay wire: frame version %d: %w", f.Version, ErrVersion)
	}
	var entity, auth, cmd cryptobyte.String
	if !s.ReadUint64(&f.CorrID) ||
		!s.ReadUint8LengthPrefixed(&entity) ||
		!s.ReadUint8LengthPrefixed(&auth) ||
		!s.ReadUint24LengthPrefixed(&cmd) ||
		!s.Empty() {
		return Frame{}, fmt.Errorf("relay wire: frame: %w", ErrMalformed)
	}
	f.EntityID, f.Authenticator, f.Command = entity, auth, cmd
	return f, nil
}

// Command is one command, response or notification. Which fields are
// meaningful depends on Type:
//
//	struct {
//	    CommandType type;
//	    select (type) {
//	        case create:    opaque recipient_key[32]; opaque delivery_key[32];
//	        case secure:    opaque sender_key[32];
//	        case send:      opaque block<0..2^24-1>;
//	        case ack:       uint64 seq;
//	        case subscribe, get, delete, ping, ok, end, pong: struct {};
//	        case hello:     uint8 min_version; uint8 max_version; uint32 block_size;
//	        case ids:       opaque recipient_id[24]; opaque sender_id[24];
//	                        opaque relay_recipient_key[32]; opaque relay_sender_key[32];
//	        case block:     uint64 seq; opaque sealed<0..2^24-1>;
//	        case error:     uint8 code;
//	    };
//	} Command;
type Command struct {
	Type Type

	RecipientKey [KeySize]byte // create
	DeliveryKey  [KeySize]byte // create
	SenderKey    [KeySize]byte // secure

	Block []byte // send: the padded block; block: the sealed block
	Seq   uint64 // ack, block

	MinVersion, MaxVersion uint8  // hello
	BlockSize              uint32 // hello

	RecipientID       [IDSize]byte  // ids
	SenderID          [IDSize]byte  // ids
	RelayRecipientKey [KeySize]byte // ids
	RelaySenderKey    [KeySize]byte // ids

	Code Code // error
}

// Marshal encodes c.
func (c *Command) Marshal() ([]byte, error) {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, 1+2*KeySize+2*IDSize+12+len(c.Block)))
	if err := c.build(b); err != nil {
		return nil, err
	}
	return b.Bytes()
}

// MarshalFrame encodes a frame carrying cmd in one pass, without first
// encoding the command on its own (a 16 KiB block is copied once).
func MarshalFrame(corr uint64, entity, authenticator []byte, cmd *Command) ([]byte, error) {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, 1+8+2+len(entity)+len(authenticator)+3+1+2*KeySize+2*IDSize+12+len(cmd.Block)))
	b.AddUint8(Version)
	b.AddUint64(corr)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(entity) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(authenticator) })
	var err error
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { err = cmd.build(b) })
	if err != nil {
		return nil, err
	}
	return b.Bytes()
}

func (c *Command) build(b *cryptobyte.Builder) error {
	b.AddUint8(uint8(c.Type))
	switch c.Type {
	case TypeCreate:
		b.AddBytes(c.RecipientKey[:])
		b.AddBytes(c.DeliveryKey[:])
	case TypeSecure:
		b.AddBytes(c.SenderKey[:])
	case TypeSend:
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.Block) })
	case TypeAck:
		b.AddUint64(c.Seq)
	case TypeSubscribe, TypeGet, TypeDelete, TypePing, TypeOK, TypeEnd, TypePong:
	case TypeHello:
		b.AddUint8(c.MinVersion)
		b.AddUint8(c.MaxVersion)
		b.AddUint32(c.BlockSize)
	case TypeIDs:
		b.AddBytes(c.RecipientID[:])
		b.AddBytes(c.SenderID[:])
		b.AddBytes(c.RelayRecipientKey[:])
		b.AddBytes(c.RelaySenderKey[:])
	case TypeBlock:
		b.AddUint64(c.Seq)
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.Block) })
	case TypeError:
		b.AddUint8(uint8(c.Code))
	default:
		return fmt.Errorf("relay wire: marshal %v: %w", c.Type, ErrUnknownCommand)
	}
	return nil
}

// ParseCommand decodes one command. An unknown type yields
// ErrUnknownCommand (the frame was well formed, so the connection
// survives); any other failure ErrMalformed. Block aliases data.
func ParseCommand(data []byte) (Command, error) {
	var c Command
	s := cryptobyte.String(data)
	var t uint8
	if !s.ReadUint8(&t) {
		return Command{}, fmt.Errorf("relay wire: command: %w", ErrMalformed)
	}
	c.Type = Type(t)
	ok := true
	switch c.Type {
	case TypeCreate:
		ok = s.CopyBytes(c.RecipientKey[:]) && s.CopyBytes(c.DeliveryKey[:])
	case TypeSecure:
		ok = s.CopyBytes(c.SenderKey[:])
	case TypeSend:
		var blk cryptobyte.String
		ok = s.ReadUint24LengthPrefixed(&blk)
		c.Block = blk
	case TypeAck:
		ok = s.ReadUint64(&c.Seq)
	case TypeSubscribe, TypeGet, TypeDelete, TypePing, TypeOK, TypeEnd, TypePong:
	case TypeHello:
		ok = s.ReadUint8(&c.MinVersion) && s.ReadUint8(&c.MaxVersion) && s.ReadUint32(&c.BlockSize)
	case TypeIDs:
		ok = s.CopyBytes(c.RecipientID[:]) && s.CopyBytes(c.SenderID[:]) &&
			s.CopyBytes(c.RelayRecipientKey[:]) && s.CopyBytes(c.RelaySenderKey[:])
	case TypeBlock:
		var blk cryptobyte.String
		ok = s.ReadUint64(&c.Seq) && s.ReadUint24LengthPrefixed(&blk)
		c.Block = blk
	case TypeError:
		var code uint8
		ok = s.ReadUint8(&code)
		c.Code = Code(code)
	default:
		return Command{}, fmt.Errorf("relay wire: command %v: %w", c.Type, ErrUnknownCommand)
	}
	if !ok || !s.Empty() {
		return Command{}, fmt.Errorf("relay wire: command %v: %w", c.Type, ErrMalformed)
	}
	return c, nil
}

// Pad returns payload padded to blockSize:
//
//	struct {
//	    uint32 length;
//	    opaque payload[length];
//	    opaque zeros[block_size - 4 - length];
//	} PaddedBlock;
func Pad(payload []byte, blockSize int) ([]byte, error) {
	if len(payload) > blockSize-PadHeaderSize {
		return nil, fmt.Errorf("relay wire: payload of %d bytes exceeds %d: %w", len(payload), blockSize-PadHeaderSize, ErrMalformed)
	}
	out := make([]byte, blockSize)
	out[0], out[1], out[2], out[3] = byte(len(payload)>>24), byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	copy(out[PadHeaderSize:], payload)
	return out, nil
}

// Unpad reverses Pad. It refuses a length beyond the block and any
// non-zero padding byte, so that every payload has exactly one padded form.
func Unpad(block []byte) ([]byte, error) {
	s := cryptobyte.String(block)
	var n uint32
	if !s.ReadUint32(&n) || uint64(n) > uint64(len(s)) {
		return nil, fmt.Errorf("relay wire: padded block: %w", ErrMalformed)
	}
	payload := block[PadHeaderSize : PadHeaderSize+int(n)]
	if !allZero(block[PadHeaderSize+int(n):]) {
		return nil, fmt.Errorf("relay wire: padded block: non-zero padding: %w", ErrMalformed)
	}
	return payload, nil
}

// zeroChunk is what padding is compared with; it is never written.
var zeroChunk [4096]byte

// allZero reports whether b holds only zero bytes. The padding is most of
// a 16 KiB block and is checked at the client and, twice, at the relay:
// bytes.Equal against zeros uses the runtime's vectorized comparison. The
// padding is no secret (the relay reads it), so the early exit is fine.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroChunk))
		if !bytes.Equal(b[:n], zeroChunk[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
