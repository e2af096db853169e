package agent_test

import (
	"fmt"
	"os"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/agent/localstore"
)

// Example creates a profile and opens it. With relays added (AddRelay),
// Invite, Accept and Send connect two profiles; see the package doc.
func Example() {
	home, err := os.MkdirTemp("", "parley-agent-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(home)
	// Real profiles use the zero Options (Argon2id per RFC 9106's second
	// recommendation); TestKDF keeps the example fast.
	opts := &agent.Options{KDF: localstore.TestKDF}
	if _, err := agent.Init(home, []byte("passphrase"), "Alice", opts); err != nil {
		fmt.Println(err)
		return
	}
	a, err := agent.Open(home, []byte("passphrase"), opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	s, err := a.Settings()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.DisplayName, "read receipts:", s.ReadReceipts, "typing:", s.TypingIndicators)
	if _, err := agent.Open(home, []byte("wrong"), opts); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Alice read receipts: true typing: false
	// localstore: wrong passphrase
}
