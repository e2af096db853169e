package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"frobnicate"}, strings.NewReader(""), &out, &errb)
	if code != 2 {
		t.Fatalf("exit code = %d, want 2", code)
	}
	if !strings.HasPrefix(errb.String(), "parley: error: unknown command") || !strings.Contains(errb.String(), "parley: hint:") {
		t.Fatalf("stderr = %q", errb.String())
	}
}

func TestVersionJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--json", "version"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit code = %d, stderr %q", code, errb.String())
	}
	if got := out.String(); got != "{\"version\":\"devel\"}\n" {
		t.Fatalf("stdout = %q", got)
	}
}
