package wire

import (
	"context"
	"io"

	"github.com/coder/websocket"
)

// ReadMessage reads one WebSocket message. A short message (a command or
// response without a block) fits the first 512 bytes; a longer one gets a
// buffer of sizeHint bytes at once, where io.ReadAll would grow it from 512
// bytes, copying a 16 KiB block several times. The slice is not reused.
func ReadMessage(ctx context.Context, ws *websocket.Conn, sizeHint int) (websocket.MessageType, []byte, error) {
	typ, r, err := ws.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	buf, err := ReadAppend(r, make([]byte, 0, 512), sizeHint)
	if err != nil {
		return 0, nil, err
	}
	return typ, buf, nil
}

// ReadAppend reads r to its end, appending to buf, and returns the
// extended slice. When buf fills it grows to at least sizeHint bytes of
// capacity at once (then doubling), so a caller that hands back the same
// buffer, sized for the largest frame, reads every message without an
// allocation. The bytes returned alias buf's array when it was large
// enough.
func ReadAppend(r io.Reader, buf []byte, sizeHint int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), max(sizeHint, 2*cap(buf), 512))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
