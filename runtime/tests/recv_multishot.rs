//! Multishot receive when the provided-buffer ring runs dry: the stream waits for a buffer
//! to come back (no busy loop on the reactor), re-arms when one does, and `pause` still
//! works on the re-armed multishot.

use std::io::Write;
use std::time::Duration;

use ringhop_runtime::{self as rt, net::TcpListener, time, Runtime};

/// The reactor's ring holds 256 buffers of 16 KiB; the client sends more than all of them.
const SENT: usize = 300 * 16 * 1024;

#[test]
fn an_empty_buffer_ring_is_waited_for_not_spun_on() {
    let runtime = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .build()
        .unwrap();
    runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (done, wait_done) = std::sync::mpsc::channel::<()>();
        let client = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.write_all(&vec![7u8; SENT]).unwrap();
            // Keep the connection open until the server is done.
            let _ = wait_done.recv();
        });
        let stream = listener.accept().await.unwrap();
        let mut chunks = stream.recv_multishot().unwrap();
        // Hold every chunk: the ring runs dry.
        let mut held = Vec::new();
        let mut received = 0;
        while let Ok(chunk) = time::timeout(Duration::from_millis(300), chunks.recv()).await {
            let chunk = chunk.unwrap();
            assert!(!chunk.is_empty(), "the client is still connected");
            received += chunk.len();
            held.push(chunk);
        }
        assert_eq!(
            held.len(),
            256,
            "every ring buffer is held ({received} bytes)"
        );
        assert!(received < SENT);

        // Dry ring: the receiver waits without keeping the reactor busy.
        let polls_before = rt::current().stats().polls;
        assert!(time::timeout(Duration::from_millis(100), chunks.recv())
            .await
            .is_err());
        let polls = rt::current().stats().polls - polls_before;
        assert!(
            polls < 20,
            "{polls} task polls in 100 ms while waiting for a buffer: a busy loop"
        );

        // Buffers come back: the stream re-arms and the rest arrives.
        held.clear();
        let chunk = chunks.recv().await.unwrap();
        received += chunk.len();
        drop(chunk);
        assert!(chunks.is_receiving());
        // And a pause on the re-armed multishot takes effect.
        chunks.pause();
        assert!(!chunks.is_receiving(), "pause after a re-arm did nothing");
        while received < SENT {
            let chunk = chunks.recv().await.unwrap();
            assert!(!chunk.is_empty());
            received += chunk.len();
        }
        assert_eq!(received, SENT);
        drop(chunks);
        drop(stream);
        drop(done);
        client.join().unwrap();
    });
}
