package main

import (
	"os"
	"strings"
	"testing"
)

// TestBadFlagsStopBeforeTraining: a bad size, family, seed count or configuration exits with
// status 2 and a message naming it, before any data is loaded or model trained.
func TestBadFlagsStopBeforeTraining(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-size", "huge", "adan"}, `unknown size "huge"`},
		{[]string{"bogus"}, `unknown family "bogus"`},
		{[]string{"-seeds", "-1", "zo"}, "-seeds=-1"},
		{[]string{"-seeds", "5000", "adan"}, "Seeds=5000"},
		{[]string{"-seeds", "5000", "adahessian"}, "Seeds"},
		{[]string{"-seeds", "5000", "localsgd"}, "Seeds"},
		{[]string{"-seeds", "5000", "zo"}, "Seeds"},
		{nil, ""},
	} {
		stderr := captureStderr(t, func() {
			if code := run(c.args); code != 2 {
				t.Errorf("%v: exit status %d, want 2", c.args, code)
			}
		})
		if !strings.Contains(stderr, c.want) {
			t.Errorf("%v: stderr %q does not name %q", c.args, stderr, c.want)
		}
	}
}

func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- b.String()
	}()
	fn()
	os.Stderr = old
	w.Close()
	return <-done
}
