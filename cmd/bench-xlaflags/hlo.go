package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// HLOSummary describes the optimized HLO a child compiled (XLA's dump,
// *.cpu_after_optimizations.txt): enough to tell whether a flag changed the program, and
// whether library fusions (XNNPACK, YNNPACK, oneDNN) replaced XLA's own code.
type HLOSummary struct {
	// Modules is the number of modules read.
	Modules int
	// Hash identifies the optimized HLO text of all modules (sorted by file name).
	Hash string
	// Library counts fusions by library kind ("__xnn_fusion", ...).
	Library map[string]int
	// CustomCalls counts custom calls by target.
	CustomCalls map[string]int
	// Dots and Convs count the dot and convolution instructions left to XLA's own
	// emitters (those inside library fusions included).
	Dots, Convs int
}

var (
	libraryKindRE = regexp.MustCompile(`"kind":"(__[a-z_]+)"`)
	customCallRE  = regexp.MustCompile(`custom_call_target="([^"]+)"`)
	dotRE         = regexp.MustCompile(`= \S+ dot\(`)
	convRE        = regexp.MustCompile(`= \S+ convolution\(`)
)

// summarizeHLO summarizes HLO texts (one a module).
func summarizeHLO(texts []string) HLOSummary {
	s := HLOSummary{Modules: len(texts), Library: map[string]int{}, CustomCalls: map[string]int{}}
	h := sha256.New()
	for _, t := range texts {
		h.Write([]byte(t))
		for _, line := range strings.Split(t, "\n") {
			for _, m := range libraryKindRE.FindAllStringSubmatch(line, -1) {
				s.Library[m[1]]++
			}
			for _, m := range customCallRE.FindAllStringSubmatch(line, -1) {
				s.CustomCalls[m[1]]++
			}
			if dotRE.MatchString(line) {
				s.Dots++
			}
			if convRE.MatchString(line) {
				s.Convs++
			}
		}
	}
	s.Hash = hex.EncodeToString(h.Sum(nil))[:12]
	return s
}

// readHLODump summarizes the optimized HLO that XLA dumped into dir.
func readHLODump(dir string) (HLOSummary, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.cpu_after_optimizations.txt"))
	if err != nil {
		return HLOSummary{}, err
	}
	if len(files) == 0 {
		return HLOSummary{}, fmt.Errorf("no optimized HLO in %s", dir)
	}
	slices.Sort(files)
	texts := make([]string, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return HLOSummary{}, err
		}
		texts = append(texts, string(b))
	}
	return summarizeHLO(texts), nil
}

// String is the summary as a table cell.
func (s HLOSummary) String() string {
	if s.Modules == 0 {
		return "-"
	}
	var parts []string
	for _, m := range []map[string]int{s.Library, s.CustomCalls} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", strings.Trim(k, "_"), m[k]))
		}
	}
	parts = append(parts, fmt.Sprintf("dot %d", s.Dots), fmt.Sprintf("conv %d", s.Convs))
	return strings.Join(parts, ", ")
}
