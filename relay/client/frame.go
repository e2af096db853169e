package client

import (
	"encoding/binary"
	"fmt"

	"github.com/parley-messenger/parley/relay/internal/wire"
)

// Offsets in a Frame (docs/PROTOCOL.md "Relay protocol: frames"):
//
//	struct {
//	    uint8 version;
//	    uint64 corr_id;
//	    opaque entity_id<0..255>;
//	    opaque authenticator<0..255>;
//	    opaque command<0..2^24-1>;
//	} Frame;
const (
	offCorr   = 1               // after version
	offEntity = offCorr + 8 + 1 // after corr_id and entity_id's length
	// sendCmdHead is a send command before its block: type and the
	// block's uint24 length.
	sendCmdHead = 1 + 3
)

// frameSize bounds the encoding of r's frame with blockSize-byte blocks.
func frameSize(r *request, blockSize int) int {
	n := 1 + 8 + 1 + IDSize + 1 + wire.MACSize + 3
	if r.cmd.Type == wire.TypeSend {
		return n + sendCmdHead + blockSize
	}
	return n + 1 + 2*wire.KeySize + 8 // the largest command a client sends
}

// appendFrame appends r's frame with corr_id corr to buf, the exact bytes
// wire.MarshalFrame encodes, leaving the authenticator zero when r is
// authenticated. For a send, r.payload is padded to blockSize in place
// (the PaddedBlock of docs/PROTOCOL.md "Relay protocol: padding"): the
// 16 KiB block is written once, straight into the frame. It returns the
// frame and, for an authenticated command, the slice the authenticator
// goes into.
func appendFrame(buf []byte, corr uint64, r *request, blockSize int) (frame, auth []byte, err error) {
	var entity []byte
	if r.hasEntity() {
		entity = r.entity[:]
	}
	authLen := 0
	if r.own != nil {
		authLen = wire.MACSize
	}
	start := len(buf)
	buf = append(buf, wire.Version)
	buf = binary.BigEndian.AppendUint64(buf, corr)
	buf = append(buf, byte(len(entity)))
	buf = append(buf, entity...)
	buf = append(buf, byte(authLen))
	authAt := len(buf)
	buf = append(buf, make([]byte, authLen)...)
	lenAt := len(buf)
	buf = append(buf, 0, 0, 0) // the command's uint24 length, set below
	if r.cmd.Type == wire.TypeSend {
		if len(r.payload) > blockSize-wire.PadHeaderSize {
			return nil, nil, fmt.Errorf("payload of %d bytes exceeds %d: %w", len(r.payload), blockSize-wire.PadHeaderSize, ErrTooLarge)
		}
		buf = append(buf, byte(wire.TypeSend), byte(blockSize>>16), byte(blockSize>>8), byte(blockSize))
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.payload)))
		buf = append(buf, r.payload...)
		// Zero padding (the reused buffer holds an old frame); the
		// compiler turns this append into a clear, no allocation.
		buf = append(buf, make([]byte, blockSize-wire.PadHeaderSize-len(r.payload))...)
	} else {
		body, err := r.cmd.Marshal()
		if err != nil {
			return nil, nil, err
		}
		buf = append(buf, body...)
	}
	n := len(buf) - lenAt - 3
	if n >= 1<<24 {
		return nil, nil, fmt.Errorf("command of %d bytes: %w", n, ErrTooLarge)
	}
	buf[lenAt], buf[lenAt+1], buf[lenAt+2] = byte(n>>16), byte(n>>8), byte(n)
	frame = buf[start:]
	if authLen > 0 {
		auth = buf[authAt : authAt+authLen]
	}
	return frame, auth, nil
}

// signedView is the Frame whose SignedFrame encoding the authenticator
// covers (wire.AuthenticateFrame), its fields aliasing an encoded frame.
func signedView(frame []byte, corr uint64, authLen int) wire.Frame {
	entityLen := int(frame[offEntity-1])
	cmdAt := offEntity + entityLen + 1 + authLen + 3
	return wire.Frame{
		Version:  frame[0],
		CorrID:   corr,
		EntityID: frame[offEntity : offEntity+entityLen],
		Command:  frame[cmdAt:],
	}
}
