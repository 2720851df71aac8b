//! Clients that reset their connection (SO_LINGER 0) mid-request, mid-body and in the
//! middle of an 8 MiB response: the server's counters, pipes and fds return to where they
//! started.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ringhop_http::{stats, Config};
use support::{fd_count, settled_fd_count, TestServer};

/// Closes with a reset instead of a FIN.
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and option value of the right size.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0);
    drop(stream);
}

#[test]
fn resets_mid_request_mid_body_and_mid_response_leak_nothing() {
    let server = TestServer::start(Config::default(), support::app::router());
    drop(server.exchange(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    let fds = settled_fd_count();
    let start = stats(&server.runtime);
    assert_eq!(start.total.open_connections, 0);
    for i in 0..30 {
        let mut stream = server.connect();
        match i % 3 {
            // Half a head.
            0 => stream.write_all(b"GET /plaintext HTTP/1.1\r\nHo").unwrap(),
            // Part of a declared body.
            1 => {
                stream
                    .write_all(
                        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n",
                    )
                    .unwrap();
                stream.write_all(&[b'x'; 10_000]).unwrap();
            }
            // The first 64 KiB of an 8 MiB answer.
            _ => {
                stream
                    .write_all(b"GET /big?8 HTTP/1.1\r\nHost: a\r\n\r\n")
                    .unwrap();
                let mut first = vec![0u8; 64 * 1024];
                stream.read_exact(&mut first).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
        reset(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = stats(&server.runtime);
        let back = now.total.open_connections == 0
            && now.total.ops_in_flight == start.total.ops_in_flight
            && now.live_pipes == start.live_pipes
            && fd_count() == fds;
        if back {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 30 resets: {now:?} (started at {start:?}), fds {} (started at {fds})",
            fd_count()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
