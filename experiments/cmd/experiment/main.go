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
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/adahessian"
	"github.com/goptlab/goptlab/experiments/adan"
	localsgdexp "github.com/goptlab/goptlab/experiments/localsgd"
	zoexp "github.com/goptlab/goptlab/experiments/zo"
	"github.com/goptlab/goptlab/mlx/history"
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

	setup, ok := families[family]
	if !ok {
		fmt.Fprintf(os.Stderr, "experiment: unknown family %q: use adahessian, adan, localsgd or zo\n", family)
		return 2
	}
	start, err := setup(sz, *seeds, *dataDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "experiment:", err)
		return 2
	}
	res, err := start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "experiment:", err)
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "experiment: interrupted: no result files written")
		}
		return 1
	}
	if err := experiments.WriteFiles(*out, res.value, res.timing, res.histories); err != nil {
		fmt.Fprintln(os.Stderr, "experiment:", err)
		return 1
	}
	if err := experiments.WriteVerdicts(os.Stdout, res.claims); err != nil {
		fmt.Fprintln(os.Stderr, "experiment:", err)
		return 1
	}
	fmt.Printf("wrote %s (%.0f s)\n", *out, res.timing.WallSeconds)
	return 0
}

// outcome is what every family's Run returns, as the CLI writes it.
type outcome struct {
	value     any // the family's *Result, written as result.json
	timing    experiments.Timing
	histories []*history.History
	claims    []experiments.Claim
}

// setupFunc builds a family's configuration for a size, with the -seeds and -data flags
// applied and validated (an error is a bad flag), and returns the run to start.
type setupFunc func(sz experiments.Size, seeds int, dataDir string) (func(context.Context) (outcome, error), error)

// family makes the setupFunc of one family from its configuration and run functions.
// Every family's Config has Seeds and DataDir fields, which set copies into it.
func family[C interface{ Validate() error }, R any](
	defaults func(experiments.Size) (C, error), set func(cfg *C, seeds int, dataDir string),
	run func(context.Context, C, io.Writer) (R, error), report func(R) outcome,
) setupFunc {
	return func(sz experiments.Size, seeds int, dataDir string) (func(context.Context) (outcome, error), error) {
		cfg, err := defaults(sz)
		if err != nil {
			return nil, err
		}
		set(&cfg, seeds, dataDir)
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return func(ctx context.Context) (outcome, error) {
			r, err := run(ctx, cfg, os.Stdout)
			if err != nil {
				return outcome{}, err
			}
			return report(r), nil
		}, nil
	}
}

// seedsOr returns seeds if the flag was given (> 0), else the size's default.
func seedsOr(seeds, def int) int {
	if seeds > 0 {
		return seeds
	}
	return def
}

var families = map[string]setupFunc{
	"adahessian": family(adahessian.DefaultConfig,
		func(c *adahessian.Config, seeds int, dir string) { c.Seeds, c.DataDir = seedsOr(seeds, c.Seeds), dir },
		adahessian.Run,
		func(r *adahessian.Result) outcome { return outcome{r, r.Timing, r.Histories, r.Verdicts()} }),
	"adan": family(adan.DefaultConfig,
		func(c *adan.Config, seeds int, dir string) { c.Seeds, c.DataDir = seedsOr(seeds, c.Seeds), dir },
		adan.Run,
		func(r *adan.Result) outcome { return outcome{r, r.Timing, r.Histories, r.Verdicts()} }),
	"localsgd": family(localsgdexp.DefaultConfig,
		func(c *localsgdexp.Config, seeds int, dir string) { c.Seeds, c.DataDir = seedsOr(seeds, c.Seeds), dir },
		localsgdexp.Run,
		func(r *localsgdexp.Result) outcome { return outcome{r, r.Timing, r.Histories, r.Verdicts()} }),
	"zo": family(zoexp.DefaultConfig,
		func(c *zoexp.Config, seeds int, dir string) { c.Seeds, c.DataDir = seedsOr(seeds, c.Seeds), dir },
		zoexp.Run,
		func(r *zoexp.Result) outcome { return outcome{r, r.Timing, r.Histories, r.Verdicts()} }),
}
