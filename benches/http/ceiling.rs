//! The ceiling server: the physical limit of this machine for an HTTP load generator. One
//! thread, one io_uring (COOP_TASKRUN | SINGLE_ISSUER), multishot accept, one recv per
//! connection, no parsing at all: it counts `\r\n\r\n` and answers each with a canned
//! response of the same size as the native server's `/plaintext` answer. Every server in
//! `benches/http/run.sh` is reported as a ratio to this one.
//!
//! `ADDR=127.0.0.1:9000 cargo run --release --example ceiling`

use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{cqueue, opcode, types, IoUring};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: ringhop\r\nDate: Mon, 23 Nov 2026 19:06:43 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const ACCEPT: u64 = u64::MAX;
const BUF: usize = 16 * 1024;

struct Conn {
    fd: RawFd,
    buf: Box<[u8; BUF]>,
    /// How much of `\r\n\r\n` the previous read ended with.
    matched: usize,
    out: Vec<u8>,
    sent: usize,
}

fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9000".to_owned());
    let listener = TcpListener::bind(&addr)?;
    let mut ring: IoUring = IoUring::builder()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .build(4096)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .build()
        .user_data(ACCEPT);
    // SAFETY: multishot accept points to no memory.
    unsafe { ring.submission().push(&accept).expect("empty SQ") };
    println!("ceiling listening on http://{addr}");
    loop {
        ring.submit_and_wait(1)?;
        let completions: Vec<(u64, i32, u32)> = ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags()))
            .collect();
        for (user_data, result, flags) in completions {
            if user_data == ACCEPT {
                if !cqueue::more(flags) {
                    // SAFETY: as above.
                    unsafe { ring.submission().push(&accept).expect("SQ has room") };
                }
                if result < 0 {
                    continue;
                }
                let one: i32 = 1;
                // SAFETY: setsockopt with a valid int.
                unsafe {
                    libc::setsockopt(
                        result,
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        (&one as *const i32).cast(),
                        4,
                    );
                }
                let index = conns.iter().position(Option::is_none).unwrap_or_else(|| {
                    conns.push(None);
                    conns.len() - 1
                });
                conns[index] = Some(Conn {
                    fd: result,
                    buf: Box::new([0; BUF]),
                    matched: 0,
                    out: Vec::new(),
                    sent: 0,
                });
                submit_recv(&mut ring, index, conns[index].as_mut().unwrap());
                continue;
            }
            let index = (user_data >> 1) as usize;
            let is_send = user_data & 1 == 1;
            let Some(conn) = conns[index].as_mut() else {
                continue;
            };
            if result <= 0 {
                // SAFETY: our fd, closed once; no op of it is in flight (one op at a time).
                unsafe { libc::close(conn.fd) };
                conns[index] = None;
                continue;
            }
            if is_send {
                conn.sent += result as usize;
                if conn.sent < conn.out.len() {
                    submit_send(&mut ring, index, conn);
                } else {
                    submit_recv(&mut ring, index, conn);
                }
                continue;
            }
            let mut requests = 0;
            for &byte in &conn.buf[..result as usize] {
                let expected = b"\r\n\r\n"[conn.matched];
                conn.matched = if byte == expected {
                    conn.matched + 1
                } else if byte == b'\r' {
                    1
                } else {
                    0
                };
                if conn.matched == 4 {
                    requests += 1;
                    conn.matched = 0;
                }
            }
            if requests == 0 {
                submit_recv(&mut ring, index, conn);
            } else {
                conn.out.clear();
                for _ in 0..requests {
                    conn.out.extend_from_slice(RESPONSE);
                }
                conn.sent = 0;
                submit_send(&mut ring, index, conn);
            }
        }
    }
}

fn submit_recv(ring: &mut IoUring, index: usize, conn: &mut Conn) {
    let entry = opcode::Recv::new(types::Fd(conn.fd), conn.buf.as_mut_ptr(), BUF as u32)
        .build()
        .user_data((index as u64) << 1);
    // SAFETY: the buffer is boxed and lives until the connection is freed, which happens
    // only after this recv's completion.
    while unsafe { ring.submission().push(&entry) }.is_err() {
        ring.submit().expect("submit");
    }
}

fn submit_send(ring: &mut IoUring, index: usize, conn: &mut Conn) {
    let rest = &conn.out[conn.sent..];
    let entry = opcode::Send::new(types::Fd(conn.fd), rest.as_ptr(), rest.len() as u32)
        .build()
        .user_data(((index as u64) << 1) | 1);
    // SAFETY: `out` is not touched until this send completes.
    while unsafe { ring.submission().push(&entry) }.is_err() {
        ring.submit().expect("submit");
    }
}
