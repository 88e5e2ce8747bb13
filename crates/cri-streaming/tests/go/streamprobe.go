// streamprobe drives berth-cri-streaming with the streaming clients crictl and critest use
// (client-go's remotecommand.NewSPDYExecutor and tools/portforward over spdy.RoundTripperFor).
// tests/go_client.rs builds it inside an unpacked cri-tools 1.29 tree as
// cmd/streamprobe/main.go, with `go build -mod=vendor`.
//
//	streamprobe exec URL [-stdin] [-tty] [-resize WxH] [-protocols p1,p2]
//	    streams the process's stdin/stdout/stderr; exits with the remote exit code,
//	    or 99 after printing "probe: error: ..." on stderr.
//	streamprobe portforward URL REMOTEPORT MESSAGE...
//	    forwards a local port to REMOTEPORT; per MESSAGE, one connection that sends it,
//	    half-closes and prints the reply on a line of its own.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
)

func main() {
	if len(os.Args) < 3 {
		fail(errors.New("usage: streamprobe exec|portforward URL ..."))
	}
	u, err := url.Parse(os.Args[2])
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "exec":
		execMode(u, os.Args[3:])
	case "portforward":
		portForwardMode(u, os.Args[3:])
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "probe: error: %v\n", err)
	os.Exit(99)
}

// oneSize hands client-go one terminal size, then ends the resize stream's writer.
type oneSize struct{ size *remotecommand.TerminalSize }

func (q *oneSize) Next() *remotecommand.TerminalSize {
	s := q.size
	q.size = nil
	return s
}

func execMode(u *url.URL, args []string) {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	stdin := fs.Bool("stdin", false, "send the probe's stdin")
	tty := fs.Bool("tty", false, "ask for a terminal")
	resize := fs.String("resize", "", "send one terminal size, WxH")
	protocols := fs.String("protocols", "", "offer only these protocols (comma-separated)")
	if err := fs.Parse(args); err != nil {
		fail(err)
	}
	config := &rest.Config{TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	var executor remotecommand.Executor
	var err error
	if *protocols == "" {
		executor, err = remotecommand.NewSPDYExecutor(config, "POST", u)
	} else {
		transport, upgrader, terr := spdy.RoundTripperFor(config)
		if terr != nil {
			fail(terr)
		}
		executor, err = remotecommand.NewSPDYExecutorForProtocols(transport, upgrader, "POST", u, strings.Split(*protocols, ",")...)
	}
	if err != nil {
		fail(err)
	}
	opts := remotecommand.StreamOptions{Stdout: os.Stdout, Stderr: os.Stderr, Tty: *tty}
	if *stdin {
		opts.Stdin = os.Stdin
	}
	if *resize != "" {
		var w, h uint16
		if _, err := fmt.Sscanf(*resize, "%dx%d", &w, &h); err != nil {
			fail(err)
		}
		opts.TerminalSizeQueue = &oneSize{size: &remotecommand.TerminalSize{Width: w, Height: h}}
	}
	err = executor.Stream(opts)
	var exitErr exec.CodeExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &exitErr):
		fmt.Fprintf(os.Stderr, "probe: exit code %d\n", exitErr.Code)
		os.Exit(exitErr.Code)
	default:
		fail(err)
	}
}

func portForwardMode(u *url.URL, args []string) {
	if len(args) < 2 {
		fail(errors.New("portforward needs REMOTEPORT and MESSAGE"))
	}
	transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		fail(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	stop := make(chan struct{})
	ready := make(chan struct{})
	pf, err := portforward.New(dialer, []string{"0:" + args[0]}, stop, ready, io.Discard, os.Stderr)
	if err != nil {
		fail(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		fail(fmt.Errorf("forwarding ended before it was ready: %v", err))
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		fail(fmt.Errorf("no forwarded port: %v", err))
	}
	for _, message := range args[1:] {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
		if err != nil {
			fail(err)
		}
		if _, err := conn.Write([]byte(message)); err != nil {
			fail(err)
		}
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			fail(err)
		}
		reply, err := io.ReadAll(conn)
		if err != nil {
			fail(err)
		}
		conn.Close()
		fmt.Printf("%s\n", reply)
	}
	close(stop)
	if err := <-done; err != nil {
		fail(err)
	}
}
