//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procInfo is what procguard needs to know of a process, from /proc/PID/stat.
type procInfo struct {
	pid, ppid, pgid int
	state           byte   // R, S, D, Z, ...
	start           uint64 // start time in clock ticks since boot: with pid, names the process
}

// zombie reports whether the process has exited and waits to be reaped.
func (p procInfo) zombie() bool { return p.state == 'Z' || p.state == 'X' }

// procTable is a snapshot of the system's processes.
type procTable struct {
	byPID    map[int]procInfo
	children map[int][]int
}

// readStat parses /proc/PID/stat.
func readStat(pid int) (procInfo, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces and ')'.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 || end+2 > len(data) {
		return procInfo{}, fmt.Errorf("procguard: /proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(data[end+2:]))
	// f[0] is field 3 (state): ppid is field 4, pgrp 5, starttime 22.
	if len(f) < 20 {
		return procInfo{}, fmt.Errorf("procguard: /proc/%d/stat: %d fields after the name", pid, len(f))
	}
	p := procInfo{pid: pid, state: f[0][0]}
	if p.ppid, err = strconv.Atoi(f[1]); err == nil {
		if p.pgid, err = strconv.Atoi(f[2]); err == nil {
			p.start, err = strconv.ParseUint(f[19], 10, 64)
		}
	}
	if err != nil {
		return procInfo{}, fmt.Errorf("procguard: /proc/%d/stat: %w", pid, err)
	}
	return p, nil
}

// scanProcs reads every process in /proc. Processes that exit during the scan are left out.
func scanProcs() (*procTable, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("procguard: listing processes: %w", err)
	}
	t := &procTable{byPID: make(map[int]procInfo, len(entries)), children: make(map[int][]int)}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readStat(pid)
		if err != nil {
			continue // gone meanwhile
		}
		t.byPID[pid] = p
		t.children[p.ppid] = append(t.children[p.ppid], pid)
	}
	return t, nil
}

// descendants returns the live (not zombie) processes descended from root, root excluded.
// The subtrees of root's direct children for which spare returns true are left out.
func (t *procTable) descendants(root int, spare func(procInfo) bool) []procInfo {
	var out []procInfo
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range t.children[pid] {
			p := t.byPID[c]
			if pid == root && spare != nil && spare(p) {
				continue
			}
			if !p.zombie() {
				out = append(out, p)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// alive reports whether p (the same process: same pid and start time) is in t and not a zombie.
func (t *procTable) alive(p procInfo) bool {
	q, ok := t.byPID[p.pid]
	return ok && q.start == p.start && !q.zombie()
}
