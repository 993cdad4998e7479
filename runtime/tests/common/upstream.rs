//! Servers a strategy reaches out to in the tests: real HTTP/1.1 on 127.0.0.1 (std::net, a
//! thread per connection), each behaving one way, well or badly.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub enum Behaviour {
    /// 200 with this body.
    Ok(&'static str),
    /// 200 once the test opens the gate: requests wait there as long as the test needs.
    Gate(Arc<Gate>),
    /// Accepts, reads the request, never answers.
    Silent,
    /// 200 with a body of this many bytes, streamed (no Content-Length).
    Stream(usize),
    /// 302 to this URL.
    Redirect(String),
}

pub struct Upstream {
    pub port: u16,
    /// Requests received so far.
    pub hits: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn start(behaviour: Behaviour) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (behaviour, hits) = (behaviour.clone(), counted.clone());
                std::thread::spawn(move || serve(conn, behaviour, hits));
            }
        });
        Upstream { port, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Reads one request, its body too (whole before answering, as most servers do).
fn read_request(conn: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_more = |seen: &mut Vec<u8>| match conn.read(&mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            seen.extend_from_slice(&buf[..n]);
            true
        }
    };
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        if !read_more(&mut seen) {
            return false;
        }
    }
    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
    let length: Option<usize> =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|n| n.trim().parse().ok());
    if let Some(length) = length {
        while seen.len() < end + length {
            if !read_more(&mut seen) {
                return false;
            }
        }
    } else if head.contains("transfer-encoding: chunked") {
        while !seen[end..].ends_with(b"0\r\n\r\n") {
            if !read_more(&mut seen) {
                return false;
            }
        }
    }
    true
}

fn serve(mut conn: TcpStream, behaviour: Behaviour, hits: Arc<AtomicUsize>) {
    // Keep-alive: answer requests on the connection until it closes.
    while read_request(&mut conn) {
        hits.fetch_add(1, Ordering::SeqCst);
        let ok = |body: &str| format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        let written = match &behaviour {
            Behaviour::Ok(body) => conn.write_all(ok(body).as_bytes()),
            Behaviour::Gate(gate) => {
                gate.wait();
                conn.write_all(ok("gate").as_bytes())
            }
            Behaviour::Silent => {
                std::thread::sleep(Duration::from_secs(600));
                return;
            }
            Behaviour::Stream(total) => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
                let chunk = vec![b'x'; 64 << 10];
                let mut sent = 0;
                while sent < *total {
                    let head = format!("{:x}\r\n", chunk.len());
                    if conn
                        .write_all(head.as_bytes())
                        .and_then(|_| conn.write_all(&chunk))
                        .and_then(|_| conn.write_all(b"\r\n"))
                        .is_err()
                    {
                        return;
                    }
                    sent += chunk.len();
                }
                conn.write_all(b"0\r\n\r\n")
            }
            Behaviour::Redirect(to) => {
                conn.write_all(format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n").as_bytes())
            }
        };
        if written.is_err() {
            return;
        }
    }
}

/// Holds requests until opened, so a test orders events without measuring time.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}
