// Command scaffold adds a bounded context to this repository, or removes
// one, leaving the repository building and its tests passing. Run it from
// the repository root (make context NAME=... does).
//
//	scaffold context [-aggregate NAME] NAME   create contexts/NAME, its topics file and its line in cmd/app
//	scaffold remove-context NAME              delete them again
//
// It refuses, and changes nothing, when the name is not a lower-case Go
// identifier, is reserved, or (for context) already exists.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scaffold:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	usage := fmt.Errorf("usage: scaffold context [-aggregate NAME] NAME | scaffold remove-context NAME")
	if len(args) == 0 {
		return usage
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	switch args[0] {
	case "context":
		flags := flag.NewFlagSet("context", flag.ContinueOnError)
		aggregate := flags.String("aggregate", "item", "the aggregate the context owns (lower-case, singular)")
		if err := flags.Parse(args[1:]); err != nil {
			return err
		}
		if flags.NArg() != 1 {
			return usage
		}
		return Add(root, flags.Arg(0), *aggregate, out)
	case "remove-context":
		if len(args) != 2 {
			return usage
		}
		return Remove(root, args[1], out)
	}
	return usage
}
