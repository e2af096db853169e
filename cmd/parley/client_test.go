package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/agent/localstore"
)

// TestProfileInUse: a second process on a profile is told which one holds
// it and what to do.
func TestProfileInUse(t *testing.T) {
	home := filepath.Join(t.TempDir(), "p")
	t.Setenv(envPassphrase, "pw")
	opts := &agent.Options{KDF: localstore.TestKDF}
	if _, err := agent.Init(home, []byte("pw"), "", opts); err != nil {
		t.Fatal(err)
	}
	a, err := agent.Open(home, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"--home", home, "contacts"}, strings.NewReader(""), &out, &errb)
	if code != 1 {
		t.Fatalf("exit code %d", code)
	}
	want := "parley: error: the profile in " + home + " is in use by another parley process\nparley: hint: stop it (a 'parley daemon', 'chat' or 'demo'), or send your requests to the running daemon on its socket " + filepath.Join(home, socketName) + "\n"
	if errb.String() != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", errb.String(), want)
	}
}
