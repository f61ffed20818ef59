// grpc-go — a gRPC server and client with Go's google.golang.org/grpc (Debian
// golang-google-grpc-dev), no generated code: a hand-written ServiceDesc and a raw-bytes codec.
// Service demo.Echo: Unary (request "abort:<code>" fails with that code) and ServerStream.
//
//	grpc-go server PORT LOG [-tls CERT KEY]
//	                             serve (over TLS with -tls, credentials.NewTLS); one line per
//	                             finished call in LOG: "<method> <code>"
//	grpc-go client PORT N [-tls CERT] [-wait]
//	                             N Unary calls (every 5th aborts NOT_FOUND) and N/5
//	                             ServerStream calls over one connection; prints "<method> <code>".
//	                             -tls: over TLS, trusting CERT; -wait: print "waiting" and read a
//	                             line from stdin before dialing (the test waits for the probes)
//	grpc-go h2c PORT LOG         plain HTTP/2 cleartext server (net/http + x/net/http2/h2c:
//	                             prior knowledge and `Upgrade: h2c`); /missing answers 404, any
//	                             other path 200; one line per request in LOG: "<method> <path> <status> <proto>"
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(d []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), d...)
	return nil
}
func (rawCodec) Name() string { return "proto" } // replaces the proto codec: no generated types

type echo struct{}

var (
	logMu sync.Mutex
	logW  *bufio.Writer
	logF  *os.File
)

func record(method string, err error) {
	logMu.Lock()
	defer logMu.Unlock()
	fmt.Fprintf(logW, "%s %s\n", method, strings.ToUpper(toSnake(status.Code(err).String())))
	logW.Flush()
}

// codes.NotFound.String() is "NotFound"; the log uses "NOT_FOUND" like the other apps
func toSnake(s string) string {
	if s == "OK" {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func act(req []byte) error {
	if s := string(req); strings.HasPrefix(s, "abort:") {
		c, _ := strconv.Atoi(s[6:])
		return status.Error(codes.Code(c), "aborted on request")
	}
	return nil
}

func unaryHandler(srv interface{}, ctx context.Context, dec func(interface{}) error,
	_ grpc.UnaryServerInterceptor) (interface{}, error) {
	var req []byte
	if err := dec(&req); err != nil {
		return nil, err
	}
	err := act(req)
	record("Unary", err)
	if err != nil {
		return nil, err
	}
	out := append([]byte("pong:"), req...)
	return &out, nil
}

func streamHandler(srv interface{}, stream grpc.ServerStream) error {
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		m := []byte(fmt.Sprintf("item%d", i))
		if err := stream.SendMsg(&m); err != nil {
			record("ServerStream", err)
			return err
		}
	}
	record("ServerStream", nil)
	return nil
}

var desc = grpc.ServiceDesc{
	ServiceName: "demo.Echo",
	HandlerType: (*interface{})(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Unary", Handler: unaryHandler}},
	Streams: []grpc.StreamDesc{{StreamName: "ServerStream", Handler: streamHandler,
		ServerStreams: true}},
}

func main() {
	encoding.RegisterCodec(rawCodec{})
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: grpc-go server PORT LOG | client PORT N")
		os.Exit(2)
	}
	port := os.Args[2]
	switch os.Args[1] {
	case "server":
		f, err := os.OpenFile(os.Args[3], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			panic(err)
		}
		logF, logW = f, bufio.NewWriter(f)
		lis, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			panic(err)
		}
		var opts []grpc.ServerOption
		if len(os.Args) >= 7 && os.Args[4] == "-tls" {
			pair, err := tls.LoadX509KeyPair(os.Args[5], os.Args[6])
			if err != nil {
				panic(err)
			}
			opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
				Certificates: []tls.Certificate{pair}})))
		}
		s := grpc.NewServer(opts...)
		var impl interface{} = &echo{}
		s.RegisterService(&desc, impl)
		fmt.Println("ready")
		if err := s.Serve(lis); err != nil {
			panic(err)
		}
	case "h2c":
		f, err := os.OpenFile(os.Args[3], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			panic(err)
		}
		logF, logW = f, bufio.NewWriter(f)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code := 200
			if r.URL.Path == "/missing" {
				code = 404
			}
			w.WriteHeader(code)
			fmt.Fprintln(w, "hello")
			logMu.Lock()
			fmt.Fprintf(logW, "%s %s %d %s\n", r.Method, r.URL.Path, code, r.Proto)
			logW.Flush()
			logMu.Unlock()
		})
		fmt.Println("ready")
		if err := http.ListenAndServe("127.0.0.1:"+port, h2c.NewHandler(h, &http2.Server{})); err != nil {
			panic(err)
		}
	case "client":
		n, _ := strconv.Atoi(os.Args[3])
		creds := grpc.WithInsecure()
		for i := 4; i < len(os.Args); i++ {
			switch os.Args[i] {
			case "-tls":
				pem, err := os.ReadFile(os.Args[i+1])
				if err != nil {
					panic(err)
				}
				roots := x509.NewCertPool()
				roots.AppendCertsFromPEM(pem)
				creds = grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
					RootCAs: roots, ServerName: "localhost"}))
				i++
			case "-wait":
				fmt.Println("waiting")
				bufio.NewReader(os.Stdin).ReadString('\n')
			}
		}
		cc, err := grpc.Dial("127.0.0.1:"+port, creds)
		if err != nil {
			panic(err)
		}
		defer cc.Close()
		ctx := context.Background()
		for i := 0; i < n; i++ {
			req := []byte("ok")
			if i%5 == 4 {
				req = []byte("abort:5")
			}
			var resp []byte
			err := cc.Invoke(ctx, "/demo.Echo/Unary", &req, &resp)
			fmt.Printf("Unary %s\n", strings.ToUpper(toSnake(status.Code(err).String())))
		}
		for i := 0; i < n/5; i++ {
			st, err := cc.NewStream(ctx, &desc.Streams[0], "/demo.Echo/ServerStream")
			if err == nil {
				req := []byte("go")
				if err = st.SendMsg(&req); err == nil {
					err = st.CloseSend()
				}
				for err == nil {
					var m []byte
					err = st.RecvMsg(&m)
				}
				if err == io.EOF {
					err = nil
				}
			}
			fmt.Printf("ServerStream %s\n", strings.ToUpper(toSnake(status.Code(err).String())))
		}
	}
}
