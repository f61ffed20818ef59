//! chainapp — a traced-chain service in std-only Rust with no tracing code of its own.
//!
//! A TcpListener on 127.0.0.1:PORT (see BIND) with one thread per connection and a hand-written
//! HTTP/1.1 parser (keep-alive, Content-Length bodies only). ROLE=front: GET /api/item/<id> makes one
//! outbound GET <BACK_URL>/item/<id> over a new TcpStream (hand-written HTTP/1.1 client,
//! `Connection: close`) from the connection's thread and returns the back's body. ROLE=back:
//! GET /item/<id> does one database operation over a pooled TcpStream and returns JSON with the
//! value — DB=redis: `GET item:<id>` (hand-written RESP client); DB=postgres: the simple query
//! `SELECT name FROM items WHERE id = <id>` (hand-written PostgreSQL v3 wire client, trust
//! authentication only). Both answer GET /health with "ok" and print `METHOD PATH STATUS` per
//! request on stdout. Environment: ROLE, PORT, BIND, BACK_URL, DB, REDIS_HOST, REDIS_PORT, PG_HOST,
//! PG_PORT, PG_USER, PG_DBNAME. BIND: unset → 127.0.0.1; `default` → [::]:PORT (a dual-stack
//! socket: std sets no IPV6_V6ONLY); else that address (e.g. ::1).

use std::env;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const MAX_HEADER_LINE: usize = 8192;
const MAX_HEADERS: usize = 100;
const MAX_BODY: usize = 1 << 20;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

enum Role {
    Front { back_host: String, back_port: u16 },
    Back { db: Database },
}

struct Request {
    method: String,
    path: String,
    keep_alive: bool,
}

struct Response {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one CRLF-terminated line of at most MAX_HEADER_LINE bytes; Ok(None) at a clean EOF.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_HEADER_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(invalid("header line too long or truncated"));
    }
    while matches!(line.last(), Some(b'\n') | Some(b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| invalid("header line is not UTF-8"))
}

/// Reads header lines up to the blank line; returns (content-length, connection header value).
fn read_headers(reader: &mut impl BufRead) -> io::Result<(usize, Option<String>)> {
    let mut content_length = 0usize;
    let mut connection = None;
    for _ in 0..MAX_HEADERS {
        let line = read_line(reader)?.ok_or_else(|| invalid("EOF in headers"))?;
        if line.is_empty() {
            return Ok((content_length, connection));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("header without colon"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| invalid("bad Content-Length"))?;
            if content_length > MAX_BODY {
                return Err(invalid("body too large"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid("chunked bodies are not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            connection = Some(value.to_ascii_lowercase());
        }
    }
    Err(invalid("too many headers"))
}

fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let line = match read_line(reader)? {
        Some(line) => line,
        None => return Ok(None),
    };
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().ok_or_else(|| invalid("no request target"))?;
    let version = parts.next().ok_or_else(|| invalid("no HTTP version"))?;
    let path = target.split('?').next().unwrap_or("").to_string();
    let (content_length, connection) = read_headers(reader)?;
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let keep_alive = match connection.as_deref() {
        Some("close") => false,
        Some("keep-alive") => true,
        _ => version == "HTTP/1.1",
    };
    Ok(Some(Request {
        method,
        path,
        keep_alive,
    }))
}

fn write_response(stream: &mut TcpStream, resp: &Response, keep_alive: bool) -> io::Result<()> {
    let reason = match resp.status {
        200 => "OK",
        404 => "Not Found",
        502 => "Bad Gateway",
        _ => "Unknown",
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        resp.status,
        reason,
        resp.content_type,
        resp.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(&resp.body);
    stream.write_all(&out)
}

fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: "text/plain".to_string(),
        body: body.as_bytes().to_vec(),
    }
}

/// GET http://host:port/path over a new connection; returns (status, content type, body).
fn http_get(host: &str, port: u16, path: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect((host, port))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let authority = if host.contains(':') {
        format!("[{}]:{}", host, port)
    } else {
        format!("{}:{}", host, port)
    };
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        path, authority
    );
    stream.write_all(req.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader)?.ok_or_else(|| invalid("back closed"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let mut content_length = None;
    let mut content_type = "application/json".to_string();
    for _ in 0..MAX_HEADERS {
        let line = read_line(&mut reader)?.ok_or_else(|| invalid("EOF in headers"))?;
        if line.is_empty() {
            let mut body = Vec::new();
            match content_length {
                Some(n) => {
                    body.resize(n, 0);
                    reader.read_exact(&mut body)?;
                }
                None => {
                    reader.take(MAX_BODY as u64).read_to_end(&mut body)?;
                }
            }
            return Ok(Response {
                status,
                content_type,
                body,
            });
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n: usize = value.parse().map_err(|_| invalid("bad Content-Length"))?;
                if n > MAX_BODY {
                    return Err(invalid("body too large"));
                }
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case("content-type") {
                content_type = value.to_string();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid("chunked bodies are not supported"));
            }
        }
    }
    Err(invalid("too many headers"))
}

enum DbKind {
    Redis,
    Postgres { user: String, dbname: String },
}

/// The back service's database: where it is and its idle connections (a connection that failed
/// is dropped, not returned).
struct Database {
    kind: DbKind,
    host: String,
    port: u16,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
}

impl Database {
    fn connect(&self) -> io::Result<BufReader<TcpStream>> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut conn = BufReader::new(stream);
        if let DbKind::Postgres { user, dbname } = &self.kind {
            pg_startup(&mut conn, user, dbname)?;
        }
        Ok(conn)
    }

    /// The item's name: one Redis GET or one PostgreSQL simple query.
    fn lookup(&self, id: u64) -> io::Result<Option<String>> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let value = match self.kind {
            DbKind::Redis => {
                let key = format!("item:{}", id);
                let cmd = format!("*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n", key.len(), key);
                conn.get_mut().write_all(cmd.as_bytes())?;
                read_bulk(&mut conn)?
            }
            DbKind::Postgres { .. } => {
                let sql = format!("SELECT name FROM items WHERE id = {}", id);
                pg_query_first(&mut conn, &sql)?
            }
        };
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
        Ok(value)
    }

    fn name(&self) -> &'static str {
        match self.kind {
            DbKind::Redis => "redis",
            DbKind::Postgres { .. } => "postgres",
        }
    }
}

/// One PostgreSQL backend message: its type byte and payload.
fn pg_read_message(reader: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    reader.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=MAX_BODY + 4).contains(&len) {
        return Err(invalid("bad postgres message length"));
    }
    let mut payload = vec![0u8; len - 4];
    reader.read_exact(&mut payload)?;
    Ok((head[0], payload))
}

/// The message field of an ErrorResponse.
fn pg_error(payload: &[u8]) -> io::Error {
    let message = payload
        .split(|&b| b == 0)
        .find(|field| field.first() == Some(&b'M'))
        .map(|field| String::from_utf8_lossy(&field[1..]).into_owned())
        .unwrap_or_else(|| "error response".to_string());
    io::Error::new(io::ErrorKind::Other, format!("postgres: {}", message))
}

/// Sends the v3 StartupMessage and waits for ReadyForQuery (trust authentication only).
fn pg_startup(conn: &mut BufReader<TcpStream>, user: &str, dbname: &str) -> io::Result<()> {
    let params = format!("user\0{}\0database\0{}\0\0", user, dbname);
    let mut msg = Vec::with_capacity(8 + params.len());
    msg.extend_from_slice(&((8 + params.len()) as u32).to_be_bytes());
    msg.extend_from_slice(&196608u32.to_be_bytes()); // protocol 3.0
    msg.extend_from_slice(params.as_bytes());
    conn.get_mut().write_all(&msg)?;
    loop {
        let (kind, payload) = pg_read_message(conn)?;
        match kind {
            b'R' if payload.len() < 4 || payload[..4] != [0, 0, 0, 0] => {
                return Err(invalid("postgres: only trust authentication is supported"));
            }
            b'E' => return Err(pg_error(&payload)),
            b'Z' => return Ok(()),
            _ => {}
        }
    }
}

/// Runs a simple query and returns the first column of its first row (None for no row or NULL).
fn pg_query_first(conn: &mut BufReader<TcpStream>, sql: &str) -> io::Result<Option<String>> {
    let mut msg = Vec::with_capacity(6 + sql.len());
    msg.push(b'Q');
    msg.extend_from_slice(&((4 + sql.len() + 1) as u32).to_be_bytes());
    msg.extend_from_slice(sql.as_bytes());
    msg.push(0);
    conn.get_mut().write_all(&msg)?;
    let mut value = None;
    let mut query_error = None;
    loop {
        let (kind, payload) = pg_read_message(conn)?;
        match kind {
            // Int16 column count, then per column Int32 length (-1 for NULL) and the bytes.
            b'D' if value.is_none() && payload.len() >= 6 && payload[..2] != [0, 0] => {
                let n = i32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]]);
                if n >= 0 && n as usize <= payload.len() - 6 {
                    let bytes = &payload[6..6 + n as usize];
                    value = Some(String::from_utf8_lossy(bytes).into_owned());
                }
            }
            b'E' => query_error = Some(pg_error(&payload)),
            b'Z' => {
                return match query_error {
                    Some(e) => Err(e),
                    None => Ok(value),
                }
            }
            _ => {}
        }
    }
}

/// One RESP reply that must be a bulk string, nil, or an error.
fn read_bulk(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let line = read_line(reader)?.ok_or_else(|| invalid("redis closed"))?;
    match line.as_bytes().first() {
        Some(b'$') => {
            let n: i64 = line[1..].parse().map_err(|_| invalid("bad bulk length"))?;
            if n < 0 {
                return Ok(None);
            }
            if n as usize > MAX_BODY {
                return Err(invalid("bulk reply too large"));
            }
            let mut buf = vec![0u8; n as usize + 2];
            reader.read_exact(&mut buf)?;
            buf.truncate(n as usize);
            String::from_utf8(buf)
                .map(Some)
                .map_err(|_| invalid("value is not UTF-8"))
        }
        Some(b'-') => Err(io::Error::new(
            io::ErrorKind::Other,
            format!("redis: {}", &line[1..]),
        )),
        _ => Err(invalid("unexpected redis reply")),
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn item_id(path: &str, prefix: &str) -> Option<u64> {
    path.strip_prefix(prefix).and_then(|rest| rest.parse().ok())
}

fn route(role: &Role, req: &Request) -> Response {
    if req.method != "GET" {
        return text(404, "not found");
    }
    if req.path == "/health" {
        return text(200, "ok");
    }
    match role {
        Role::Front {
            back_host,
            back_port,
        } => match item_id(&req.path, "/api/item/") {
            Some(id) => match http_get(back_host, *back_port, &format!("/item/{}", id)) {
                Ok(resp) => resp,
                Err(e) => text(502, &e.to_string()),
            },
            None => text(404, "not found"),
        },
        Role::Back { db } => match item_id(&req.path, "/item/") {
            Some(id) => match db.lookup(id) {
                Ok(value) => Response {
                    status: if value.is_some() { 200 } else { 404 },
                    content_type: "application/json".to_string(),
                    body: format!(
                        "{{\"id\": {}, \"name\": {}, \"db\": \"{}\", \"stack\": \"rust\"}}",
                        id,
                        value
                            .as_deref()
                            .map(json_escape)
                            .unwrap_or_else(|| "null".to_string()),
                        db.name()
                    )
                    .into_bytes(),
                },
                Err(e) => text(502, &e.to_string()),
            },
            None => text(404, "not found"),
        },
    }
}

fn serve_connection(role: &Role, stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader)? {
        let resp = route(role, &req);
        write_response(&mut writer, &resp, req.keep_alive)?;
        println!("{} {} {}", req.method, req.path, resp.status);
        if !req.keep_alive {
            break;
        }
    }
    Ok(())
}

/// Splits "http://host:port[/...]" or "http://[v6]:port[/...]" into (host, port).
fn parse_back_url(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

fn main() {
    let port: u16 = env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9001);
    let role = match env::var("ROLE").as_deref() {
        Ok("front") => {
            let url = env::var("BACK_URL").unwrap_or_default();
            match parse_back_url(&url) {
                Some((back_host, back_port)) => Role::Front {
                    back_host,
                    back_port,
                },
                None => {
                    eprintln!("rust chainapp: BACK_URL must look like http://host:port");
                    std::process::exit(2);
                }
            }
        }
        Ok("back") => {
            let kind = match env::var("DB").as_deref() {
                Ok("redis") | Err(_) => DbKind::Redis,
                Ok("postgres") => DbKind::Postgres {
                    user: env::var("PG_USER").unwrap_or_else(|_| "postgres".to_string()),
                    dbname: env::var("PG_DBNAME").unwrap_or_else(|_| "postgres".to_string()),
                },
                Ok(other) => {
                    eprintln!(
                        "rust chainapp: DB must be redis or postgres, not {:?}",
                        other
                    );
                    std::process::exit(2);
                }
            };
            let (host, port_var, default_port) = match kind {
                DbKind::Redis => (
                    env::var("REDIS_HOST").unwrap_or_else(|_| "127.0.0.1".to_string()),
                    "REDIS_PORT",
                    6379,
                ),
                DbKind::Postgres { .. } => (
                    env::var("PG_HOST").unwrap_or_else(|_| "127.0.0.1".to_string()),
                    "PG_PORT",
                    5432,
                ),
            };
            let port = env::var(port_var)
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(default_port);
            Role::Back {
                db: Database {
                    kind,
                    host,
                    port,
                    idle: Mutex::new(Vec::new()),
                },
            }
        }
        _ => {
            eprintln!("rust chainapp: ROLE must be front or back");
            std::process::exit(2);
        }
    };
    let bind = match env::var("BIND") {
        Ok(b) if b == "default" => "::".to_string(),
        Ok(b) if !b.is_empty() => b,
        _ => "127.0.0.1".to_string(),
    };
    let listener = match TcpListener::bind((bind.as_str(), port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rust chainapp: bind {} port {}: {}", bind, port, e);
            std::process::exit(1);
        }
    };
    let role = Arc::new(role);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(_) => continue,
        };
        let role = Arc::clone(&role);
        thread::spawn(move || {
            let _ = serve_connection(&role, stream);
        });
    }
}
