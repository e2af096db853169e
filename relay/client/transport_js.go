//go:build js

package client

import (
	"context"
	"errors"

	"github.com/coder/websocket"
)

// connect cannot work in a browser: its WebSocket API neither lets a page
// pin the relay's key fingerprint nor exposes the TLS exporter that
// command authenticators are bound to. The package builds for js/wasm so
// that code depending on it does; dialing fails.
func (c *Client) connect(context.Context) (*websocket.Conn, []byte, batcher, error) {
	return nil, nil, nil, errors.New("relay client: not supported on js/wasm: a browser cannot pin the relay key or export TLS keying material")
}
