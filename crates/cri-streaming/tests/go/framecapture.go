//go:build ignore

// Run from a cri-tools 1.29 tree as cmd/framecapture/main.go (go run -mod=vendor
// ./cmd/framecapture); its output is GO_CLIENT_FRAMES in src/spdy/frame.rs.

// framecapture writes frames with spdystream's own Framer (the encoder client-go uses)
// and prints them as hex, for berth-cri-streaming's framing tests.
package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/moby/spdystream/spdy"
)

func main() {
	var buf bytes.Buffer
	f, err := spdy.NewFramer(&buf, &buf)
	if err != nil {
		panic(err)
	}
	h1 := http.Header{}
	h1.Set("streamType", "error")
	must(f.WriteFrame(&spdy.SynStreamFrame{StreamId: 1, Headers: h1}))
	h2 := http.Header{}
	h2.Set("streamType", "stdin")
	must(f.WriteFrame(&spdy.SynStreamFrame{StreamId: 3, Headers: h2}))
	must(f.WriteFrame(&spdy.DataFrame{StreamId: 3, Data: []byte("hello")}))
	must(f.WriteFrame(&spdy.DataFrame{StreamId: 3, Flags: spdy.DataFlagFin}))
	must(f.WriteFrame(&spdy.PingFrame{Id: 1}))
	must(f.WriteFrame(&spdy.RstStreamFrame{StreamId: 1, Status: spdy.Cancel}))
	must(f.WriteFrame(&spdy.GoAwayFrame{LastGoodStreamId: 0, Status: spdy.GoAwayOK}))
	fmt.Println(hex.EncodeToString(buf.Bytes()))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
