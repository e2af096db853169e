package relay

import (
	"fmt"
	"io"
	"sync/atomic"
)

// metrics are counts only: nothing about any queue or client.
type metrics struct {
	connections atomic.Uint64 // connections accepted
	refused     atomic.Uint64 // connections refused over the limit
	commands    atomic.Uint64 // commands received
	errors      atomic.Uint64 // error responses sent
	created     atomic.Uint64 // queues created
	deleted     atomic.Uint64 // queues deleted
	sent        atomic.Uint64 // blocks stored
	delivered   atomic.Uint64 // blocks pushed or fetched
	acked       atomic.Uint64 // blocks acknowledged
	expired     atomic.Uint64 // blocks expired
}

// WriteMetrics writes the relay's counters in the Prometheus text
// exposition format (version 0.0.4).
func (s *Server) WriteMetrics(w io.Writer) error {
	m := &s.metrics
	rows := []struct {
		name, help, typ string
		v               uint64
	}{
		{"parley_relay_connections_open", "Client connections being served.", "gauge", uint64(max(s.conns.Load(), 0))},
		{"parley_relay_connections_total", "Client connections accepted.", "counter", m.connections.Load()},
		{"parley_relay_connections_refused_total", "Connections refused over the connection limit, or closed before TLS over the socket limit (MaxConnections+MaxPending).", "counter", m.refused.Load()},
		{"parley_relay_commands_total", "Commands received.", "counter", m.commands.Load()},
		{"parley_relay_errors_total", "Error responses sent.", "counter", m.errors.Load()},
		{"parley_relay_queues_created_total", "Queues created.", "counter", m.created.Load()},
		{"parley_relay_queues_deleted_total", "Queues deleted.", "counter", m.deleted.Load()},
		{"parley_relay_blocks_sent_total", "Blocks stored.", "counter", m.sent.Load()},
		{"parley_relay_blocks_delivered_total", "Blocks delivered to recipients.", "counter", m.delivered.Load()},
		{"parley_relay_blocks_acked_total", "Blocks acknowledged and deleted.", "counter", m.acked.Load()},
		{"parley_relay_blocks_expired_total", "Blocks removed unacknowledged after the block age limit.", "counter", m.expired.Load()},
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", r.name, r.help, r.name, r.typ, r.name, r.v); err != nil {
			return err
		}
	}
	return nil
}
