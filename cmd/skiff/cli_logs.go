package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// podArg accepts POD or pod/POD (pods/POD, po/POD).
func podArg(arg string) (string, error) {
	if kind, name, ok := strings.Cut(arg, "/"); ok {
		switch strings.ToLower(kind) {
		case "pod", "pods", "po":
			return name, nil
		}
		return "", fmt.Errorf("%q: only pods have logs and exec here (give POD or pod/POD)", arg)
	}
	return arg, nil
}

func newLogsCmd() *cobra.Command {
	var (
		cf         cliFlags
		container  string
		follow     bool
		previous   bool
		tail       int64
		since      time.Duration
		timestamps bool
	)
	cmd := &cobra.Command{
		Use:   "logs POD [-c CONTAINER]",
		Short: "Print the logs of a container in a pod",
		Long: `Print a container's log, streamed from the agent of the pod's node through the
API server. stdout goes to stdout, stderr to stderr. Logs survive agent restarts;
--previous shows the container instance before the current one (after a restart).`,
		Example: `  skiff logs web-7d9f -c httpd
  skiff logs -f --tail 20 web-7d9f
  skiff logs --previous web-7d9f`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := podArg(args[0])
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			req := &skiffv1.LogsRequest{Namespace: c.Namespace, Pod: name, Container: container, Follow: follow,
				Previous: previous, TailLines: tail, SinceSeconds: int64(since.Seconds()), Timestamps: timestamps}
			if tail < 0 {
				req.TailLines = 0
			}
			s, err := c.PodStreams().Logs(ctx, req)
			if err != nil {
				return client.FromError(err)
			}
			for {
				m, err := s.Recv()
				if errors.Is(err, io.EOF) || (err != nil && ctx.Err() != nil) {
					return nil
				}
				if err != nil {
					return client.FromError(err)
				}
				out := cmd.OutOrStdout()
				if m.Stream == 2 {
					out = cmd.ErrOrStderr()
				}
				if _, err := out.Write(m.Data); err != nil {
					return err
				}
			}
		},
	}
	cf.register(cmd, false)
	f := cmd.Flags()
	f.StringVarP(&container, "container", "c", "", "container name (needed when the pod has several)")
	f.BoolVarP(&follow, "follow", "f", false, "keep streaming new lines")
	f.BoolVarP(&previous, "previous", "p", false, "the log of the previous instance of the container")
	f.Int64Var(&tail, "tail", -1, "only the last N lines (-1: all)")
	f.DurationVar(&since, "since", 0, "only lines younger than this (e.g. 5m)")
	f.BoolVar(&timestamps, "timestamps", false, "prefix each line with its time")
	return cmd
}

func newExecCmd() *cobra.Command {
	var (
		cf        cliFlags
		container string
		stdin     bool
		tty       bool
		runExec   func(cmd *cobra.Command, args []string) error
	)
	cmd := &cobra.Command{
		Use:   "exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]",
		Short: "Run a command in a container",
		Long: `Run a command in a running container, streamed through the API server to the
agent of the pod's node. -i sends your input; -t gives the command a terminal
(use both for a shell). The exit code of the command becomes skiff's.`,
		Example: `  skiff exec web-7d9f -- cat /etc/hostname
  skiff exec -it web-7d9f -- sh`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runExec(cmd, args)
			var code exitCodeError
			if errors.As(err, &code) {
				// As kubectl: the command's exit code becomes ours.
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				os.Exit(int(code))
			}
			return err
		},
	}
	cf.register(cmd, false)
	f := cmd.Flags()
	f.StringVarP(&container, "container", "c", "", "container name (needed when the pod has several)")
	f.BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the command")
	f.BoolVarP(&tty, "tty", "t", false, "run the command on a terminal")
	runExec = func(cmd *cobra.Command, args []string) error {
		if cmd.ArgsLenAtDash() != 1 {
			return errors.New("give the pod, then -- and the command: skiff exec POD -- COMMAND [ARG...]")
		}
		name, err := podArg(args[0])
		if err != nil {
			return err
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithCancel(cmd.Context())
		defer cancel()
		s, err := c.PodStreams().Exec(ctx)
		if err != nil {
			return client.FromError(err)
		}
		start := &skiffv1.ExecStart{Namespace: c.Namespace, Pod: name, Container: container, Command: args[1:], Stdin: stdin, Tty: tty}
		fd := int(os.Stdin.Fd())
		if tty {
			if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
				start.Size = &skiffv1.TerminalSize{Width: uint32(ws.Col), Height: uint32(ws.Row)}
			}
			if stdin {
				if restore, err := rawTerminal(fd); err == nil {
					defer restore()
				}
			}
		}
		if err := s.Send(&skiffv1.ExecRequest{Start: start}); err != nil {
			return client.FromError(err)
		}
		if stdin {
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := os.Stdin.Read(buf)
					if n > 0 {
						if s.Send(&skiffv1.ExecRequest{Stdin: append([]byte(nil), buf[:n]...)}) != nil {
							return
						}
					}
					if err != nil {
						_ = s.Send(&skiffv1.ExecRequest{StdinClosed: true})
						return
					}
				}
			}()
		}
		for {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return errors.New("exec: the stream ended without the command's exit code")
			}
			if err != nil {
				return client.FromError(err)
			}
			if m.Exited {
				if m.ExitCode != 0 {
					return exitCodeError(m.ExitCode)
				}
				return nil
			}
			out := cmd.OutOrStdout()
			if m.Stream == 2 {
				out = cmd.ErrOrStderr()
			}
			if _, err := out.Write(m.Data); err != nil {
				return err
			}
		}
	}
	return cmd
}

// exitCodeError makes skiff exit with the command's code.
type exitCodeError int32

func (e exitCodeError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", int32(e))
}

// rawTerminal puts the terminal on fd in raw mode and returns the undo.
func rawTerminal(fd int) (func(), error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

func init() {
	rootCmd.AddCommand(newLogsCmd(), newExecCmd())
}
