// Command chainapp is a traced-chain service on Go's net/http with no tracing code of its own.
//
// ROLE=front: GET /api/item/<id> makes one outbound GET <BACK_URL>/item/<id> with a shared
// http.Client (keep-alive) from the goroutine serving the request and returns the back's body.
// ROLE=back: GET /item/<id> does one database operation over a small pool of plain net.Conn
// connections and returns JSON with the value — DB=redis: `GET item:<id>` (minimal RESP client
// below); DB=postgres: the simple query `SELECT name FROM items WHERE id = <id>` (minimal
// PostgreSQL v3 wire client below, trust authentication only). Both answer GET /health with "ok"
// and print `METHOD PATH STATUS` per request on stdout. Environment: ROLE, PORT, BIND, BACK_URL, DB,
// REDIS_HOST, REDIS_PORT, PG_HOST, PG_PORT, PG_USER, PG_DBNAME, TLS_CERT, TLS_KEY, TLS_H2. BIND:
// unset → 127.0.0.1; `default` → ":PORT" (net/http's own default: a dual-stack [::] socket); else
// that address (e.g. ::1). TLS_CERT and TLS_KEY (PEM files): serve HTTPS instead of HTTP; an
// https BACK_URL is fetched without verifying its certificate. Over TLS both sides speak
// HTTP/1.1 only unless TLS_H2=1. Standard library only.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dbConn is one connection to the database with its reader.
type dbConn struct {
	conn   net.Conn
	reader *bufio.Reader
}

// connPool hands out idle connections and dials new ones (running setup on them) when none is idle.
type connPool struct {
	addr  string
	setup func(*dbConn) error
	mu    sync.Mutex
	idle  []*dbConn
}

func (p *connPool) get() (*dbConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &dbConn{conn: conn, reader: bufio.NewReader(conn)}
	if p.setup != nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if err := p.setup(c); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return c, nil
}

func (p *connPool) put(c *dbConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < 8 {
		p.idle = append(p.idle, c)
		return
	}
	c.conn.Close()
}

// redisGet runs GET key; found is false for a nil bulk reply.
func redisGet(p *connPool, key string) (value string, found bool, err error) {
	c, err := p.get()
	if err != nil {
		return "", false, err
	}
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	cmd := fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
	if _, err = io.WriteString(c.conn, cmd); err != nil {
		c.conn.Close()
		return "", false, err
	}
	value, found, err = readBulk(c.reader)
	if err != nil {
		c.conn.Close()
		return "", false, err
	}
	p.put(c)
	return value, found, nil
}

// readBulk reads one RESP reply that must be a bulk string (or nil, or an error reply).
func readBulk(r *bufio.Reader) (string, bool, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", false, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", false, errors.New("redis: empty reply")
	}
	switch line[0] {
	case '-':
		return "", false, errors.New("redis: " + line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", false, err
		}
		if n < 0 {
			return "", false, nil
		}
		if n > 1<<20 {
			return "", false, errors.New("redis: bulk reply too large")
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", false, err
		}
		return string(buf[:n]), true, nil
	}
	return "", false, fmt.Errorf("redis: unexpected reply %q", line)
}

const maxPgMessage = 1 << 20

// pgReadMessage reads one backend message: its type byte and payload.
func pgReadMessage(r *bufio.Reader) (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(head[1:]))
	if n < 4 || n-4 > maxPgMessage {
		return 0, nil, fmt.Errorf("postgres: bad message length %d", n)
	}
	payload := make([]byte, n-4)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return head[0], payload, nil
}

// pgError turns an ErrorResponse payload into an error carrying its message field.
func pgError(payload []byte) error {
	for _, field := range strings.Split(string(payload), "\x00") {
		if strings.HasPrefix(field, "M") {
			return errors.New("postgres: " + field[1:])
		}
	}
	return errors.New("postgres: error response")
}

// pgStartup sends the v3 StartupMessage and waits for ReadyForQuery (trust authentication only).
func pgStartup(user, dbname string) func(*dbConn) error {
	return func(c *dbConn) error {
		params := "user\x00" + user + "\x00database\x00" + dbname + "\x00\x00"
		msg := make([]byte, 8, 8+len(params))
		binary.BigEndian.PutUint32(msg[0:], uint32(8+len(params)))
		binary.BigEndian.PutUint32(msg[4:], 196608) // protocol 3.0
		msg = append(msg, params...)
		if _, err := c.conn.Write(msg); err != nil {
			return err
		}
		for {
			kind, payload, err := pgReadMessage(c.reader)
			if err != nil {
				return err
			}
			switch kind {
			case 'R':
				if len(payload) < 4 || binary.BigEndian.Uint32(payload) != 0 {
					return errors.New("postgres: only trust authentication is supported")
				}
			case 'E':
				return pgError(payload)
			case 'Z':
				return nil
			}
		}
	}
}

// pgQueryFirst runs a simple query and returns the first column of its first row.
func pgQueryFirst(p *connPool, sql string) (value string, found bool, err error) {
	c, err := p.get()
	if err != nil {
		return "", false, err
	}
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	msg := make([]byte, 5, 6+len(sql))
	msg[0] = 'Q'
	binary.BigEndian.PutUint32(msg[1:], uint32(4+len(sql)+1))
	msg = append(append(msg, sql...), 0)
	if _, err = c.conn.Write(msg); err != nil {
		c.conn.Close()
		return "", false, err
	}
	var queryErr error
	for {
		kind, payload, err := pgReadMessage(c.reader)
		if err != nil {
			c.conn.Close()
			return "", false, err
		}
		switch kind {
		case 'D':
			// Int16 column count, then per column Int32 length (-1 for NULL) and the bytes.
			if found || len(payload) < 6 || binary.BigEndian.Uint16(payload) < 1 {
				continue
			}
			n := int32(binary.BigEndian.Uint32(payload[2:]))
			if n >= 0 && int(n) <= len(payload)-6 {
				value, found = string(payload[6:6+n]), true
			}
		case 'E':
			queryErr = pgError(payload)
		case 'Z':
			p.put(c)
			return value, found, queryErr
		}
	}
}

// statusRecorder remembers the status a handler wrote, for the request log line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		fmt.Printf("%s %s %d\n", r.Method, r.URL.Path, rec.status)
	})
}

func itemID(path, prefix string) (int, bool) {
	id, err := strconv.Atoi(strings.TrimPrefix(path, prefix))
	return id, err == nil && id >= 0
}

func main() {
	role := os.Getenv("ROLE")
	port := os.Getenv("PORT")
	if port == "" {
		port = "9001"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	})
	switch role {
	case "front":
		backURL := strings.TrimRight(os.Getenv("BACK_URL"), "/")
		client := &http.Client{Timeout: 10 * time.Second}
		if strings.HasPrefix(backURL, "https:") {
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
				ForceAttemptHTTP2: os.Getenv("TLS_H2") == "1"}
			if os.Getenv("TLS_H2") != "1" {
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			}
			client.Transport = tr
		}
		mux.HandleFunc("/api/item/", func(w http.ResponseWriter, r *http.Request) {
			id, ok := itemID(r.URL.Path, "/api/item/")
			if !ok {
				http.NotFound(w, r)
				return
			}
			resp, err := client.Get(fmt.Sprintf("%s/item/%d", backURL, id))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
			w.WriteHeader(resp.StatusCode)
			w.Write(body)
		})
	case "back":
		db := envOr("DB", "redis")
		var lookup func(id int) (string, bool, error)
		switch db {
		case "redis":
			redisAddr := net.JoinHostPort(envOr("REDIS_HOST", "127.0.0.1"), envOr("REDIS_PORT", "6379"))
			pool := &connPool{addr: redisAddr}
			lookup = func(id int) (string, bool, error) {
				return redisGet(pool, fmt.Sprintf("item:%d", id))
			}
		case "postgres":
			pool := &connPool{
				addr:  net.JoinHostPort(envOr("PG_HOST", "127.0.0.1"), envOr("PG_PORT", "5432")),
				setup: pgStartup(envOr("PG_USER", "postgres"), envOr("PG_DBNAME", "postgres")),
			}
			lookup = func(id int) (string, bool, error) {
				return pgQueryFirst(pool, fmt.Sprintf("SELECT name FROM items WHERE id = %d", id))
			}
		default:
			fmt.Fprintf(os.Stderr, "go chainapp: DB must be redis or postgres, not %q\n", db)
			os.Exit(2)
		}
		mux.HandleFunc("/item/", func(w http.ResponseWriter, r *http.Request) {
			id, ok := itemID(r.URL.Path, "/item/")
			if !ok {
				http.NotFound(w, r)
				return
			}
			value, found, err := lookup(id)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			body, _ := json.Marshal(map[string]interface{}{
				"id": id, "name": nilIfMissing(value, found), "db": db, "stack": "go"})
			w.Header().Set("Content-Type", "application/json")
			if !found {
				w.WriteHeader(http.StatusNotFound)
			}
			w.Write(body)
		})
	default:
		fmt.Fprintln(os.Stderr, "go chainapp: ROLE must be front or back")
		os.Exit(2)
	}
	addr := net.JoinHostPort(envOr("BIND", "127.0.0.1"), port)
	if os.Getenv("BIND") == "default" {
		addr = ":" + port
	}
	server := &http.Server{Addr: addr, Handler: logRequests(mux)}
	var err error
	if cert, key := os.Getenv("TLS_CERT"), os.Getenv("TLS_KEY"); cert != "" && key != "" {
		if os.Getenv("TLS_H2") != "1" {
			server.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
		err = server.ListenAndServeTLS(cert, key)
	} else {
		err = server.ListenAndServe()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go chainapp:", err)
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func nilIfMissing(value string, found bool) interface{} {
	if !found {
		return nil
	}
	return value
}
