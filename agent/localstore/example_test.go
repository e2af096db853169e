package localstore_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/parley-messenger/parley/agent/localstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "parley-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	// Real profiles use the zero Options (DefaultKDF); TestKDF keeps the
	// example fast.
	s, err := localstore.Open(filepath.Join(dir, "profile.db"), []byte("passphrase"), &localstore.Options{KDF: localstore.TestKDF})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	err = s.Update(func(tx *localstore.Tx) error {
		return tx.Put("contacts", []byte("contact-1"), []byte("Alice"))
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = s.View(func(tx *localstore.Tx) error {
		v, err := tx.Get("contacts", []byte("contact-1"))
		fmt.Printf("%s %v\n", v, err)
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output: Alice <nil>
}
