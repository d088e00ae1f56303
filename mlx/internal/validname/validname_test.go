package validname

import (
	"strings"
	"testing"
)

func TestLabelAndScopePath(t *testing.T) {
	for _, s := range []string{"", "adam lr=1e-3", "zo-sgd", "fedavg(K=8,H=5)", "é"} {
		if err := Label(s); err != nil {
			t.Errorf("Label(%q): %v", s, err)
		}
	}
	for _, s := range []string{"   ", "a\x00b", "line\nbreak", "\xff", strings.Repeat("x", MaxBytes+1)} {
		if err := Label(s); err == nil {
			t.Errorf("Label(%q) accepted", s)
		}
	}
	for _, s := range []string{"", "/zo", "zo", "/a/b", "local sgd"} {
		if err := ScopePath(s); err != nil {
			t.Errorf("ScopePath(%q): %v", s, err)
		}
	}
	for _, s := range []string{"/", "  ", "/ zo", "a//b", "a/", "/..", "z\x00o", "\xff", "/" + strings.Repeat("x", MaxBytes)} {
		if err := ScopePath(s); err == nil {
			t.Errorf("ScopePath(%q) accepted", s)
		}
	}
}
