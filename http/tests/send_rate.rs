//! The minimum response data rate: clients that stop reading, or read a trickle, are cut and
//! their server-side socket and pipes released; a client reading at a fair pace is not.
//! (Tests run one at a time: they count this process's fds.)

mod support;

use std::io::{BufReader, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ringhop_http::{Config, MinDataRate};
use support::{fd_count, read_reply, settled_fd_count, TestServer};

static SERIAL: Mutex<()> = Mutex::new(());

/// 240 B/s, checked in windows of 1 s (the default grace is 5 s).
fn config() -> Config {
    Config::default().min_response_data_rate(Some(MinDataRate {
        bytes_per_second: 240,
        grace: Duration::from_secs(1),
    }))
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits until this process has `expected` fds open; returns how long that took.
fn wait_for_fds(expected: usize, within: Duration, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let now = fd_count();
        if now == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{what}: {now} fds open, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn clients_that_pipeline_and_never_read_are_cut() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(config(), support::app::router());
    drop(server.exchange(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    let before = settled_fd_count();
    let rss_before = rss_kib();
    // 16 pipelined 1 MiB answers each: more than the socket buffers hold, so the rest waits
    // in the server's pipes for a reader that never comes.
    let batch = b"GET /big?1 HTTP/1.1\r\nHost: a\r\n\r\n".repeat(16);
    let flooders = support::never_reading_clients(&server, &batch, 50);
    // Meanwhile a fresh client is served.
    let mut fresh = server.connect();
    fresh
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut BufReader::new(&mut fresh), false);
    assert_eq!(reply.body, b"Hello, World!");
    drop(fresh);
    // The server's ends of the flood go: only the clients' own fds remain.
    let took = wait_for_fds(
        before + flooders.len(),
        Duration::from_secs(8),
        "never-reading",
    );
    eprintln!("50 never-reading pipelining clients cut after {took:?} (grace 1 s)");
    let stats = ringhop_http::stats(&server.runtime);
    assert_eq!(stats.total.closed_send_rate, 50, "{stats:?}");
    assert_eq!(stats.total.open_connections, 0, "{stats:?}");
    assert_eq!(stats.live_pipes, 0, "{stats:?}");
    // The segments the flood left pooled go back to the allocator within seconds.
    let rss_cut = rss_kib();
    let decayed = Instant::now();
    while ringhop_pipes::live_segments() > 300 {
        assert!(
            decayed.elapsed() < Duration::from_secs(10),
            "{} segments still allocated",
            ringhop_pipes::live_segments()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // And the allocator gives the memory back to the kernel: RSS returns near its start.
    let limit = rss_before + 10 * 1024;
    while rss_kib() > limit {
        assert!(
            decayed.elapsed() < Duration::from_secs(10),
            "RSS {rss_before} KiB before the flood, {rss_cut} KiB when it was cut, still {} \
             KiB {:?} later",
            rss_kib(),
            decayed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "RSS {rss_before} KiB before the flood, {rss_cut} KiB when it was cut, {} KiB {:?} \
         later",
        rss_kib(),
        decayed.elapsed()
    );
}

#[test]
fn a_client_reading_100_bytes_a_second_is_cut_and_a_fair_reader_is_not() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(config(), support::app::router());
    drop(server.exchange(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    let before = settled_fd_count();

    // A fair reader (about 1 MB/s) of a 64 MiB body, alongside.
    let mut fair = server.connect();
    fair.write_all(b"GET /big?64 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = stop.clone();
    let fair_reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut total = 0;
        let started = Instant::now();
        while !reading.load(std::sync::atomic::Ordering::Relaxed)
            && started.elapsed() < Duration::from_secs(20)
        {
            let n = fair.read(&mut buf).expect("the fair reader was cut");
            assert!(n > 0, "the fair reader's connection closed");
            total += n;
            std::thread::sleep(Duration::from_millis(8));
        }
        // Kept open until the main thread is done counting fds.
        (total, fair)
    });

    // The trickle: 100 bytes a second.
    let mut slow = server.connect();
    slow.write_all(b"GET /big?64 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 100];
    // Its server side goes within a few windows; the fair reader's stays (2 of its fds).
    loop {
        let _ = slow.read(&mut buf);
        // The fair reader's two ends stay; the slow client's own end too.
        if fd_count() == before + 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the 100 B/s reader was not cut ({} fds, expected {})",
            fd_count(),
            before + 3
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "100 B/s reader cut after {:?} (grace 1 s)",
        started.elapsed()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (total, _fair) = fair_reader.join().unwrap();
    assert!(total > 1 << 20, "the fair reader got only {total} bytes");
}
