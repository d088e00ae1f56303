// Package validname checks the labels and Store scope paths that configurations take, so
// that a name of spaces, a NUL byte or a megabyte of text is an error naming the field,
// not a broken Store path, plot legend or checkpoint.
package validname

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBytes is the longest label or scope path accepted, in bytes: far more than any
// readable name, and well under the 4 KiB that checkpoints allow for a variable's path.
const MaxBytes = 1024

// Label checks a label shown in histories, plots and checkpoints (a run, stepper or method
// name). The empty string is accepted (callers use it for their default); otherwise the
// label must be valid UTF-8 of at most MaxBytes bytes, without control characters (NUL,
// newline, tab, ...) and not only spaces.
func Label(s string) error {
	if s == "" {
		return nil
	}
	if err := text(s); err != nil {
		return err
	}
	if strings.TrimFunc(s, unicode.IsSpace) == "" {
		return fmt.Errorf("it is only spaces")
	}
	return nil
}

// ScopePath checks a Store scope path such as "/zo" or "localsgd/state". The empty string
// is accepted (callers use it for their default); otherwise the path must be valid UTF-8 of
// at most MaxBytes bytes, without control characters, and each of its "/"-separated parts
// (a leading "/" is optional) must be non-empty, without spaces at its ends, and not "." or "..".
func ScopePath(s string) error {
	if s == "" {
		return nil
	}
	if err := text(s); err != nil {
		return err
	}
	for part := range strings.SplitSeq(strings.TrimPrefix(s, "/"), "/") {
		switch {
		case part == "":
			return fmt.Errorf("it has an empty part (want e.g. \"/name\" or \"a/b\")")
		case strings.TrimFunc(part, unicode.IsSpace) != part:
			return fmt.Errorf("part %q starts or ends with a space", part)
		case part == "." || part == "..":
			return fmt.Errorf("part %q is not a name", part)
		}
	}
	return nil
}

// text checks what labels and paths share: length, UTF-8, no control characters.
func text(s string) error {
	if len(s) > MaxBytes {
		return fmt.Errorf("it is %d bytes long, more than the limit of %d", len(s), MaxBytes)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("it is not valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("it holds the control character %U at byte %d", r, i)
		}
	}
	return nil
}
