// Command experiment runs one experiment family and writes its result files.
//
//	go run ./experiments/cmd/experiment [flags] FAMILY
//
// FAMILY is one of: adahessian, adan, localsgd, zo. Flags:
//
//	-size tiny|default|paper   how big (default: default)
//	-seeds N                   evaluation seeds (default: the size's)
//	-out DIR                   where result.json, timing.json and histories.json go (default: results/FAMILY-SIZE)
//	-data DIR                  the data set's folder (default: the family's loader default)
//
// It prints one line per training run, then the verdict of every claim. The exit status
// is 0 when the experiment ran, whatever the verdicts; 2 for bad flags; 1 for a failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/adahessian"
	"github.com/goptlab/goptlab/experiments/adan"
	localsgdexp "github.com/goptlab/goptlab/experiments/localsgd"
	zoexp "github.com/goptlab/goptlab/experiments/zo"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("experiment", flag.ContinueOnError)
	size := fs.String("size", string(experiments.Default), "tiny, default or paper")
	seeds := fs.Int("seeds", 0, "evaluation seeds (0: the size's default)")
	out := fs.String("out", "", "output folder (default results/FAMILY-SIZE)")
	dataDir := fs.String("data", "", "data set folder (default: the loader's)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: experiment [flags] FAMILY   (FAMILY: adahessian, adan, localsgd, zo)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	family := fs.Arg(0)
	sz, err := experiments.ParseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "experiment: -size:", err)
		return 2
	}
	if *seeds < 0 {
		fmt.Fprintf(os.Stderr, "experiment: -seeds=%d: must be >= 1 (or 0 for the size's default)\n", *seeds)
		return 2
	}
	if *out == "" {
		*out = filepath.Join("results", family+"-"+string(sz))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch family {
	case "adahessian":
		cfg, err := adahessian.DefaultConfig(sz)
		if err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 2
		}
		if *seeds > 0 {
			cfg.Seeds = *seeds
		}
		cfg.DataDir = *dataDir
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 2
		}
		res, err := adahessian.Run(ctx, cfg, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(os.Stderr, "experiment: interrupted: no result files written")
			}
			return 1
		}
		if err := experiments.WriteFiles(*out, res, res.Timing, res.Histories); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 1
		}
		for _, c := range res.Verdicts() {
			j := c.Judgement
			fmt.Printf("%-20s %-17s %s; %s\n", c.ID, j.Verdict, j.Summary, j.Interval)
		}
		fmt.Printf("wrote %s (%.0f s)\n", *out, res.Timing.WallSeconds)
	case "adan":
		cfg, err := adan.DefaultConfig(sz)
		if err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 2
		}
		if *seeds > 0 {
			cfg.Seeds = *seeds
		}
		cfg.DataDir = *dataDir
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 2
		}
		res, err := adan.Run(ctx, cfg, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(os.Stderr, "experiment: interrupted: no result files written")
			}
			return 1
		}
		if err := experiments.WriteFiles(*out, res, res.Timing, res.Histories); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 1
		}
		if err := experiments.WriteVerdicts(os.Stdout, res.Verdicts()); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 1
		}
		fmt.Printf("wrote %s (%.0f s)\n", *out, res.Timing.WallSeconds)
	case "localsgd":
		cfg, err := localsgdexp.DefaultConfig(sz)
		if err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 2
		}
		if *seeds > 0 {
			cfg.Seeds = *seeds
		}
		cfg.DataDir = *dataDir
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 2
		}
		res, err := localsgdexp.Run(ctx, cfg, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(os.Stderr, "experiment: interrupted: no result files written")
			}
			return 1
		}
		if err := experiments.WriteFiles(*out, res, res.Timing, res.Histories); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 1
		}
		for _, c := range res.Verdicts() {
			j := c.Judgement
			fmt.Printf("%-38s %-17s %s; %s\n", c.ID, j.Verdict, j.Summary, j.Interval)
		}
		fmt.Printf("wrote %s (%.0f s)\n", *out, res.Timing.WallSeconds)
	case "zo":
		cfg, err := zoexp.DefaultConfig(sz)
		if err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 2
		}
		if *seeds > 0 {
			cfg.Seeds = *seeds
		}
		cfg.DataDir = *dataDir
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 2
		}
		res, err := zoexp.Run(ctx, cfg, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(os.Stderr, "experiment: interrupted: no result files written")
			}
			return 1
		}
		if err := experiments.WriteFiles(*out, res, res.Timing, res.Histories); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 1
		}
		if err := experiments.WriteVerdicts(os.Stdout, res.Verdicts()); err != nil {
			fmt.Fprintln(os.Stderr, "experiment:", err)
			return 1
		}
		fmt.Printf("wrote %s (%.0f s)\n", *out, res.Timing.WallSeconds)
	default:
		fmt.Fprintf(os.Stderr, "experiment: unknown family %q: use adahessian, adan, localsgd or zo\n", family)
		return 2
	}
	return 0
}
