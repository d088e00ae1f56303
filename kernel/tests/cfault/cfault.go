// Package cfault crashes inside C code, for the kernel's fault-injection tests: a
// notebook cell calls it to check that a crash in cgo code (as in a broken XLA
// plugin) ends the cell with an error and leaves the kernel alive.
package cfault

/*
#include <stdlib.h>

static void segfault(void) { volatile int *p = 0; *p = 1; }
static void die(void) { abort(); }
*/
import "C"

// Segfault writes through a null pointer in C.
func Segfault() { C.segfault() }

// Abort calls C's abort().
func Abort() { C.die() }
