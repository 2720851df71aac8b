//! The `lines` example's protocol over a raw TcpStream, byte by byte: every line straddles
//! reads and segments.

#[allow(dead_code)]
#[path = "../examples/lines.rs"]
mod lines;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use ringhop::pipes;
use ringhop::rt::{self, net::TcpListener};

/// Serves the example's protocol on a one-reactor runtime; returns the runtime (keep it
/// alive) and a client connected to it.
fn start() -> (rt::Runtime, TcpStream) {
    let runtime = rt::Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .build()
        .unwrap();
    let addr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            let store = lines::Store::default();
            while let Ok(stream) = listener.accept().await {
                rt::spawn_local(lines::serve(pipes::connect(stream).unwrap(), store.clone()));
            }
        });
        addr
    });
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (runtime, stream)
}

#[test]
fn lines_protocol_across_split_writes() {
    let (_runtime, mut stream) = start();
    stream.set_nodelay(true).unwrap();
    let request =
        b"SET greeting hello world\nGET greeting\nGET missing\nDEL greeting\nGET greeting\nBOGUS\n";
    for byte in request {
        stream.write_all(&[*byte]).unwrap();
    }
    stream.write_all(b"QUIT\n").unwrap();
    let replies: Vec<String> = BufReader::new(stream).lines().map(Result::unwrap).collect();
    assert_eq!(
        replies,
        [
            "OK",
            "hello world",
            "NOT_FOUND",
            "OK",
            "NOT_FOUND",
            "ERR unknown command",
            "BYE"
        ]
    );
}

#[test]
fn an_overlong_line_is_a_protocol_error() {
    let (_runtime, mut stream) = start();
    stream.write_all(&vec![b'x'; 20_000]).unwrap();
    let replies: Vec<String> = BufReader::new(stream).lines().map(Result::unwrap).collect();
    assert_eq!(replies, ["ERR line too long"]);
}

#[test]
fn an_overlong_line_is_an_error_also_when_it_arrives_whole() {
    // The same limit when the line and its newline come in one write (a complete line in
    // one read), with the lines before it answered first.
    let (_runtime, mut stream) = start();
    let mut batch = b"SET a 1\nSET long ".to_vec();
    batch.extend_from_slice(&[b'x'; 20_000]);
    batch.extend_from_slice(b"\nGET long\n");
    stream.write_all(&batch).unwrap();
    let replies: Vec<String> = BufReader::new(stream).lines().map(Result::unwrap).collect();
    assert_eq!(replies, ["OK", "ERR line too long"]);
}

/// A client that pipelines commands and does not read their answers meets backpressure:
/// 8-byte commands with 8 KB answers must not turn the inbound pipe's megabyte into
/// gigabytes of buffered output. (The example flushed once per read: 64 KiB of `GET big`
/// held 64 MiB of segments.)
#[test]
fn answers_to_a_client_that_does_not_read_stay_bounded() {
    let (_runtime, mut stream) = start();
    let value = "v".repeat(8000);
    stream
        .write_all(format!("SET big {value}\n").as_bytes())
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    assert_eq!(reply, "OK\n");
    let before = pipes::live_segments();
    let commands = 8192;
    stream.write_all(&b"GET big\n".repeat(commands)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let held = pipes::live_segments().saturating_sub(before) * 4096;
    assert!(
        held < 4 << 20,
        "{held} bytes of answers buffered for a client that does not read"
    );
    // Every answer still arrives once the client reads.
    for i in 0..commands {
        reply.clear();
        reader.read_line(&mut reply).unwrap();
        assert_eq!(reply.len(), value.len() + 1, "answer {i}");
    }
}
