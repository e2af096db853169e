// Package e2e tests Parley end to end through separate processes: the
// parley binary is built once, two relays run as `parley relay`, and two
// profiles talk through the client commands and the daemon, while relays
// and agents are killed with SIGKILL and restarted. See e2e_test.go.
package e2e
