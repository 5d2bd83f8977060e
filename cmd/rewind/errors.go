package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// usageError marks a mistake in the input itself, the command line or a
// config file (exit code 2), as opposed to a failure while doing the work
// (exit code 1).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef builds a usage error with a hint to the command's help.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{fmt.Errorf("%s; run `%s --help` for usage", fmt.Sprintf(format, args...), cmd.CommandPath())}
}

// args wraps a cobra argument validator so its complaints are usage errors.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return usagef(cmd, "%v", err)
		}
		return nil
	}
}

// problemsError is verify's answer that the repository has problems: the
// check ran and this is what it found (exit code 3), as opposed to a check
// that could not run (exit code 1). quiet: the answer is already complete
// on stdout (--json), so nothing is printed on stderr.
type problemsError struct {
	msg   string
	quiet bool
}

func (e *problemsError) Error() string { return e.msg }
