//! The minimum request body data rate: clients trickling a body are answered 408 after the
//! grace period, while a normal client keeps being served at normal latency.

#[path = "../../tests/common/stall.rs"]
mod stall;
mod support;

use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringhop_http::{Config, MinDataRate};
use support::{read_reply, TestServer};

/// The default minimum body rate (240 B/s) with a grace period of 1 s instead of 5 s.
fn one_second_grace() -> Config {
    Config::default().min_request_body_data_rate(Some(MinDataRate {
        bytes_per_second: 240,
        grace: Duration::from_secs(1),
    }))
}

#[test]
fn bodies_trickled_at_1_byte_a_second_get_408_and_others_are_served() {
    let config = one_second_grace();
    let server = TestServer::start(config, support::app::router());
    let mut tricklers = Vec::new();
    for _ in 0..50 {
        let mut stream = server.connect();
        stream
            .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
            .unwrap();
        tricklers.push(stream);
    }
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = tricklers.iter().map(|s| s.try_clone().unwrap()).collect();
    let trickle_stop = stop.clone();
    let trickle = std::thread::spawn(move || {
        let mut writers = writers;
        while !trickle_stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(8) {
            for writer in &mut writers {
                let _ = writer.write_all(b"x");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    // A normal client meanwhile: uploads go through at normal latency.
    let mut normal = server.connect();
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let sent = Instant::now();
        normal
            .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
        let reply = read_reply(&mut BufReader::new(&mut normal), false);
        assert_eq!(reply.body, b"5 bytes");
        worst = worst.max(sent.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        worst < Duration::from_millis(200),
        "a normal upload took {worst:?}"
    );
    let mut cut_after = Duration::ZERO;
    for (i, stream) in tricklers.iter_mut().enumerate() {
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 408 "), "trickler {i}: {text}");
        cut_after = cut_after.max(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    eprintln!(
        "50 bodies at 1 B/s answered 408 within {cut_after:?} (grace 1 s); a normal client's \
         worst upload meanwhile {worst:?}"
    );
    assert!(cut_after < Duration::from_secs(6), "took {cut_after:?}");
    let stats = ringhop_http::stats(&server.runtime);
    assert_eq!(stats.total.closed_body_rate, 50, "{stats:?}");
}

/// A burst does not pay for a stall after it: the rate is judged in windows of the grace
/// period. (With one running average from the body's start, 100 kB at 240 B/s held the
/// connection for 7 minutes.)
#[test]
fn a_body_that_stalls_after_a_burst_is_cut_within_two_grace_periods() {
    let config = one_second_grace();
    let server = TestServer::start(config, support::app::router());
    let (text, took) = stall::burst_then_stall(server.addr);
    assert!(text.starts_with("HTTP/1.1 408 "), "after {took:?}: {text}");
    // The burst's window (1 s), then one with nothing in it (1 s), and the watchdog's tick.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let stats = ringhop_http::stats(&server.runtime);
    assert_eq!(stats.total.closed_body_rate, 1, "{stats:?}");
}

#[test]
fn hundreds_of_dribbled_heads_get_408_at_the_header_timeout() {
    let config = Config::default().header_timeout(Duration::from_secs(1));
    let server = TestServer::start(config, support::app::router());
    let head = b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX-Slow: ".to_vec();
    let mut slowloris: Vec<_> = (0..300).map(|_| server.connect()).collect();
    let started = Instant::now();
    // A header byte each 200 ms: never a complete head.
    let mut writers: Vec<_> = slowloris.iter().map(|s| s.try_clone().unwrap()).collect();
    let dribble = std::thread::spawn(move || {
        for byte in head.iter().cycle().take(head.len() + 20) {
            for writer in &mut writers {
                let _ = writer.write_all(&[*byte]);
            }
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let mut normal = server.connect();
    for _ in 0..10 {
        let sent = Instant::now();
        normal
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut BufReader::new(&mut normal), false);
        assert_eq!(reply.body, b"Hello, World!");
        assert!(sent.elapsed() < Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, stream) in slowloris.iter_mut().enumerate() {
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 408 "), "slow head {i}: {text}");
    }
    let took = started.elapsed();
    dribble.join().unwrap();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let stats = ringhop_http::stats(&server.runtime);
    assert_eq!(stats.total.closed_header_timeout, 300, "{stats:?}");
}

/// Reads the body with a timeout around each read, as an application with its own
/// patience might: the reads it gives up on are dropped while they wait.
async fn impatient_upload(
    req: &mut ringhop_http::Request<'_>,
    res: &mut ringhop_http::Response<'_>,
) -> std::io::Result<()> {
    let mut received = 0;
    loop {
        let chunk =
            ringhop_runtime::time::timeout(Duration::from_millis(200), req.body().chunk()).await;
        match chunk {
            Ok(Ok(Some(chunk))) => received += chunk.len(),
            Ok(Ok(None)) => break,
            Ok(Err(err)) => return Err(err),
            // Given up on: try again.
            Err(_) => {}
        }
    }
    res.body(format!("{received} bytes").as_bytes());
    Ok(())
}

#[test]
fn a_body_whose_reads_the_handler_keeps_dropping_is_still_held_to_the_rate() {
    let config = one_second_grace();
    let router = ringhop_http::Router::new().post("/impatient", impatient_upload);
    let server = TestServer::start(config, router);
    // A head that promises a body that never comes.
    let mut stream = server.connect();
    stream
        .write_all(b"POST /impatient HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out);
    // Each dropped read's wait counts: the grace, the empty window after it, the watchdog's
    // tick. (Before, the time spent in dropped reads was never counted and the connection
    // was held for as long as the client liked.)
    assert!(
        text.starts_with("HTTP/1.1 408 "),
        "after {took:?}: {text:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let stats = ringhop_http::stats(&server.runtime);
    assert_eq!(stats.total.closed_body_rate, 1, "{stats:?}");
}
