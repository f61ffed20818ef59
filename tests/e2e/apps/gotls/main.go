// Command gotls is the Go HTTPS server and client of tests/e2e/test_go_tls.py: net/http over
// crypto/tls, standard library only, no tracing code of its own.
//
//	gotls server -addr 127.0.0.1:PORT -cert CERT -key KEY [-h2]
//	    Serves GET /hello/<n> with the body "hello <n>\n" (and /metrics, one gauge, for a
//	    Prometheus scrape) and prints "listening" once listening, then
//	    "METHOD PATH STATUS PROTO" per request. HTTP/1.1 only unless -h2 (TLSNextProto is an
//	    empty map: no h2 in ALPN).
//	gotls client -url https://127.0.0.1:PORT -n N [-c C] [-h2] [-wait]
//	    Makes N GETs of /hello/0 .. /hello/N-1 from C goroutines sharing one http.Client
//	    (keep-alive), checks every status and body, and prints "done N ok M bad B proto P" (exit 1
//	    when B > 0). -wait: first read one line from stdin (so the test can start the agent
//	    between the client's start and its requests). HTTP/1.1 only unless -h2.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func serve(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8443", "listen address")
	cert := fs.String("cert", "", "certificate (PEM)")
	key := fs.String("key", "", "key (PEM)")
	h2 := fs.Bool("h2", false, "offer HTTP/2")
	fs.Parse(args)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	logLine := func(r *http.Request) {
		mu.Lock()
		fmt.Fprintf(out, "%s %s 200 %s\n", r.Method, r.URL.Path, r.Proto)
		out.Flush()
		mu.Unlock()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello/", func(w http.ResponseWriter, r *http.Request) {
		n := strings.TrimPrefix(r.URL.Path, "/hello/")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello "+n+"\n")
		logLine(r)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "# TYPE gotls_up gauge\ngotls_up 1\n")
		logLine(r)
	})
	srv := &http.Server{Addr: *addr, Handler: mux}
	if !*h2 {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotls server:", err)
		os.Exit(1)
	}
	mu.Lock()
	fmt.Fprintln(out, "listening")
	out.Flush()
	mu.Unlock()
	if err := srv.ServeTLS(ln, *cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "gotls server:", err)
		os.Exit(1)
	}
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	url := fs.String("url", "https://127.0.0.1:8443", "server base URL")
	n := fs.Int("n", 10, "requests")
	c := fs.Int("c", 1, "concurrent goroutines")
	h2 := fs.Bool("h2", false, "allow HTTP/2")
	wait := fs.Bool("wait", false, "read a line from stdin before the requests")
	fs.Parse(args)
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		MaxIdleConnsPerHost: *c,
		MaxConnsPerHost:     *c, // no spare dial left mid-handshake at exit
		ForceAttemptHTTP2:   *h2,
	}
	if !*h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	cl := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	if *wait {
		fmt.Println("waiting")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	var next, ok, bad int64
	var proto atomic.Value
	proto.Store("")
	var wg sync.WaitGroup
	for w := 0; w < *c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1) - 1
				if i >= int64(*n) {
					return
				}
				resp, err := cl.Get(fmt.Sprintf("%s/hello/%d", *url, i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "gotls client:", err)
					atomic.AddInt64(&bad, 1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := fmt.Sprintf("hello %d\n", i)
				if err != nil || resp.StatusCode != 200 || string(body) != want {
					fmt.Fprintf(os.Stderr, "gotls client: %d: status %d body %q err %v\n",
						i, resp.StatusCode, body, err)
					atomic.AddInt64(&bad, 1)
					continue
				}
				proto.Store(resp.Proto)
				atomic.AddInt64(&ok, 1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("done %d ok %d bad %d proto %s\n", *n, ok, bad, proto.Load())
	if bad > 0 {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gotls server|client ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		serve(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: gotls server|client ...")
		os.Exit(2)
	}
}
