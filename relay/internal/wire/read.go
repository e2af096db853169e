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
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), max(sizeHint, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return typ, buf, nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}
