package netproxy

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Table is an iptables table the proxy writes.
type Table string

// Tables the proxy writes.
const (
	TableNAT    Table = "nat"
	TableFilter Table = "filter"
)

// Runner runs iptables. Calls come from the Proxier's sync goroutine (and
// Cleanup), one at a time. *Exec implements it; tests may record calls.
type Runner interface {
	// Restore feeds data to iptables-restore --noflush: chains declared in
	// data are flushed and rewritten, others are left alone.
	Restore(ctx context.Context, data []byte) error
	// Save returns iptables-save's output for table.
	Save(ctx context.Context, table Table) ([]byte, error)
	// EnsureRule inserts rule (args after the chain) at the top of chain in
	// table unless an identical rule is there.
	EnsureRule(ctx context.Context, table Table, chain string, rule ...string) error
	// DeleteRule deletes one rule identical to rule, if present.
	DeleteRule(ctx context.Context, table Table, chain string, rule ...string) error
}

// Exec runs the iptables binaries. Prefix, if set, is prepended to every
// command line: {"ip", "netns", "exec", "x"} runs them in network
// namespace x (how the tests program a namespace of their own).
type Exec struct {
	Prefix []string
	// IPTables and IPTablesRestore, IPTablesSave default to "iptables",
	// "iptables-restore" and "iptables-save" on $PATH.
	IPTables, IPTablesRestore, IPTablesSave string
}

var _ Runner = (*Exec)(nil)

func (e *Exec) run(ctx context.Context, stdin []byte, bin string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, e.Prefix...), bin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &CommandError{Args: argv, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Restore implements Runner. -w waits for the xtables lock rather than
// failing when another program holds it.
func (e *Exec) Restore(ctx context.Context, data []byte) error {
	_, err := e.run(ctx, data, or(e.IPTablesRestore, "iptables-restore"), "-w", "5", "--noflush")
	return err
}

// Save implements Runner.
func (e *Exec) Save(ctx context.Context, table Table) ([]byte, error) {
	return e.run(ctx, nil, or(e.IPTablesSave, "iptables-save"), "-t", string(table))
}

// EnsureRule implements Runner.
func (e *Exec) EnsureRule(ctx context.Context, table Table, chain string, rule ...string) error {
	bin := or(e.IPTables, "iptables")
	check := append([]string{"-w", "5", "-t", string(table), "-C", chain}, rule...)
	if _, err := e.run(ctx, nil, bin, check...); err == nil {
		return nil
	} else if !isExitStatus(err, 1) {
		return err
	}
	ins := append([]string{"-w", "5", "-t", string(table), "-I", chain, "1"}, rule...)
	_, err := e.run(ctx, nil, bin, ins...)
	return err
}

// DeleteRule implements Runner.
func (e *Exec) DeleteRule(ctx context.Context, table Table, chain string, rule ...string) error {
	bin := or(e.IPTables, "iptables")
	del := append([]string{"-w", "5", "-t", string(table), "-D", chain}, rule...)
	if _, err := e.run(ctx, nil, bin, del...); err != nil && !isExitStatus(err, 1) {
		return err
	}
	return nil
}

// CommandError is a failed iptables command, with what it printed.
type CommandError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

func (e *CommandError) Unwrap() error { return e.Err }

// isExitStatus: iptables exits 1 for "no such rule/chain" (a -C that did
// not match) and other codes for usage or permission errors.
func isExitStatus(err error, code int) bool {
	ce, ok := err.(*CommandError)
	if !ok {
		return false
	}
	ee, ok := ce.Err.(*exec.ExitError)
	return ok && ee.ExitCode() == code
}
