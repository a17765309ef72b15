package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// podOf resolves the POD or TYPE/NAME argument of logs and exec to a pod
// name, as kubectl does: for a workload or a Service, one of the pods its
// selector matches (Running and Ready first), saying on stderr which one
// when there are several.
func podOf(ctx context.Context, c *client.Client, errOut io.Writer, arg string) (string, error) {
	kind, name, err := splitTarget(arg)
	if err != nil {
		return "", err
	}
	if kind == "pod" {
		return name, nil
	}
	var matched int
	pod, _, err := podBehind(ctx, c, c.Namespace, kind, name, func(pods []corev1.Pod) *corev1.Pod {
		matched = len(pods)
		return pickPodForLogs(pods)
	})
	if err != nil {
		return "", err
	}
	if matched > 1 {
		fmt.Fprintf(errOut, "Found %d pods, using pod/%s\n", matched, pod.Name)
	}
	return pod.Name, nil
}

// pickPodForLogs prefers what pickPod picks; without a ready pod, the one
// most worth reading: placed on a node, then Running before Unknown before
// Pending before finished, then the most restarts, then the oldest.
func pickPodForLogs(pods []corev1.Pod) *corev1.Pod {
	if p := pickPod(pods); p != nil {
		return p
	}
	if len(pods) == 0 {
		return nil
	}
	phaseRank := map[corev1.PodPhase]int{corev1.PodRunning: 0, corev1.PodUnknown: 1, corev1.PodPending: 2}
	rank := func(p *corev1.Pod) int {
		if r, ok := phaseRank[p.Status.Phase]; ok {
			return r
		}
		return 3
	}
	restarts := func(p *corev1.Pod) (n int32) {
		for _, cs := range p.Status.ContainerStatuses {
			n += cs.RestartCount
		}
		return n
	}
	best := &pods[0]
	for i := 1; i < len(pods); i++ {
		p := &pods[i]
		switch {
		case (p.Spec.NodeName != "") != (best.Spec.NodeName != ""):
			if p.Spec.NodeName != "" {
				best = p
			}
		case rank(p) != rank(best):
			if rank(p) < rank(best) {
				best = p
			}
		case restarts(p) != restarts(best):
			if restarts(p) > restarts(best) {
				best = p
			}
		case p.CreationTimestamp.Before(&best.CreationTimestamp):
			best = p
		}
	}
	return best
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
		Use:   "logs (POD | TYPE/NAME) [-c CONTAINER]",
		Short: "Print the logs of a container in a pod",
		Long: `Print a container's log, streamed from the agent of the pod's node through the
API server. stdout goes to stdout, stderr to stderr. Logs survive agent restarts;
--previous shows the container instance before the current one (after a restart).
TYPE/NAME (deploy/web, svc/web, sts/db, ds/NAME, job/NAME, rs/NAME, rc/NAME)
reads one of the pods behind it, a Running and Ready one first.`,
		Example: `  skiff logs web-7d9f -c httpd
  skiff logs deploy/web
  skiff logs -f --tail 20 web-7d9f
  skiff logs --previous web-7d9f`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			name, err := podOf(ctx, c, cmd.ErrOrStderr(), args[0])
			if err != nil {
				return err
			}
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
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]",
		Short: "Run a command in a container",
		Long: `Run a command in a running container, streamed through the API server to the
agent of the pod's node. -i sends your input; -t gives the command a terminal
(use both for a shell). The exit code of the command becomes skiff's.
TYPE/NAME (deploy/web, svc/web, ...) runs it in one of the pods behind it.`,
		Example: `  skiff exec web-7d9f -- cat /etc/hostname
  skiff exec deploy/web -- env
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
			return errors.New("give the pod, then -- and the command: skiff exec POD -- COMMAND [ARG...] (or TYPE/NAME for a pod of a workload)")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithCancel(cmd.Context())
		defer cancel()
		name, err := podOf(ctx, c, cmd.ErrOrStderr(), args[0])
		if err != nil {
			return err
		}
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
