//! Multishot receive when the provided-buffer ring runs dry: the stream waits for a buffer
//! to come back (no busy loop on the reactor), re-arms when one does, and `pause` still
//! works on the re-armed multishot.

use std::io::Write;
use std::time::Duration;

use ringhop_runtime::{self as rt, net::TcpListener, time, Runtime};

/// The reactor's ring holds 256 buffers of 16 KiB; the client sends more than all of them.
const SENT: usize = 300 * 16 * 1024;

fn one_reactor() -> Runtime {
    Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .build()
        .unwrap()
}

#[test]
fn an_empty_buffer_ring_is_waited_for_not_spun_on() {
    let runtime = one_reactor();
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

/// Refuses every `refuse_every`-th chunk it is offered (none when 0), recording what it took.
struct Recorder {
    taken: std::cell::RefCell<Vec<u8>>,
    offers: std::cell::Cell<usize>,
    refuse_every: usize,
}

impl Recorder {
    fn refusing_every(refuse_every: usize) -> std::rc::Rc<Recorder> {
        std::rc::Rc::new(Recorder {
            taken: Default::default(),
            offers: Default::default(),
            refuse_every,
        })
    }
}

impl rt::net::RecvConsumer for Recorder {
    fn offer(&self, bytes: &[u8]) -> bool {
        let n = self.offers.get() + 1;
        self.offers.set(n);
        if self.refuse_every > 0 && n % self.refuse_every == 0 {
            return false;
        }
        self.taken.borrow_mut().extend_from_slice(bytes);
        true
    }
}

/// A consumer takes received bytes as they are reaped, without the stream's poller being
/// polled for them; what it refuses, and the end of the stream, come out of `poll_recv` in
/// order. Under the epoll driver the driver receives for the consumer at each readable edge
/// while the stream waits; only a chunk that the stream's own call found before its fd ever
/// waited (the first) can come out of `poll_recv` without an offer.
#[test]
fn a_consumer_takes_chunks_inline_and_refused_ones_come_out_of_poll_recv_in_order() {
    let runtime = one_reactor();
    let uring = runtime.driver() == rt::Driver::IoUring;
    for refuse_every in [0, 3] {
        runtime.block_on_local(move || async move {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (go, wait_go) = std::sync::mpsc::channel::<()>();
            let client = std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                for i in 0..50u8 {
                    // One chunk at a time: wait until the server asks for the next.
                    wait_go.recv().unwrap();
                    stream.write_all(&[i; 100]).unwrap();
                }
                // Close only when the server has everything (it drops `go`).
                let _ = wait_go.recv();
            });
            let stream = listener.accept().await.unwrap();
            let mut chunks = stream.recv_multishot().unwrap();
            let recorder = Recorder::refusing_every(refuse_every);
            chunks.set_consumer(recorder.clone());
            let mut seen = Vec::new();
            let mut polled_out = 0;
            for i in 0..50u8 {
                go.send(()).unwrap();
                let want = (i as usize + 1) * 100;
                // Wait until the bytes arrived by either road, polling the stream meanwhile
                // (as a pump does).
                loop {
                    let taken = recorder.taken.borrow().len();
                    if taken + seen.len() >= want {
                        break;
                    }
                    if let Ok(chunk) = time::timeout(Duration::from_millis(5), chunks.recv()).await
                    {
                        let chunk = chunk.unwrap();
                        assert!(!chunk.is_empty());
                        // In order: a refused chunk is everything received after the last
                        // taken byte.
                        assert_eq!(recorder.taken.borrow().len() + seen.len(), i as usize * 100);
                        seen.extend_from_slice(&chunk);
                        polled_out += 1;
                    }
                }
            }
            drop(go);
            client.join().unwrap();
            let eof = chunks.recv().await.unwrap();
            assert!(eof.is_empty(), "the end comes out of poll_recv");
            let total = recorder.taken.borrow().len() + seen.len();
            assert_eq!(total, 50 * 100);
            let offers = recorder.offers.get();
            // Chunks the stream's own calls received, never offered.
            let unoffered = 50 - offers;
            if uring {
                assert_eq!(offers, 50, "every chunk is offered once");
            } else {
                // Under epoll a chunk that lands between `go` and the stream's own next poll
                // is received by that poll, not offered at the edge: a race with the client
                // thread that a loaded machine loses a few times in 50 (CI saw 4). Most
                // chunks still arrive at an edge and are offered there.
                assert!(offers >= 25, "epoll offered only {offers} of 50 chunks");
            }
            let refused = offers.checked_div(refuse_every).unwrap_or(0);
            assert_eq!(
                polled_out,
                refused + unoffered,
                "refused chunks come out of poll_recv, taken ones do not"
            );
        });
    }
}

/// Bytes and the peer's FIN arriving together, while the stream waits with a consumer: the
/// bytes are offered (the stream's poller is not needed for them) and the end comes out of
/// `poll_recv` after them, on both drivers (under epoll, the driver receives at the edge).
#[test]
fn bytes_and_the_end_arriving_together_are_offered_then_ended_in_order() {
    let runtime = one_reactor();
    runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let client = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            wait_go.recv().unwrap();
            // One write and the FIN right behind it.
            stream.write_all(&[7u8; 300]).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let _ = wait_go.recv();
        });
        let stream = listener.accept().await.unwrap();
        let mut chunks = stream.recv_multishot().unwrap();
        let recorder = Recorder::refusing_every(0);
        chunks.set_consumer(recorder.clone());
        // The stream waits (under epoll its fd is registered by this poll), then the peer
        // sends.
        assert!(time::timeout(Duration::from_millis(20), chunks.recv())
            .await
            .is_err());
        go.send(()).unwrap();
        let first = time::timeout(Duration::from_secs(5), chunks.recv())
            .await
            .expect("the end comes out of poll_recv")
            .unwrap();
        assert!(
            first.is_empty(),
            "the bytes went to the consumer, the end after them"
        );
        assert_eq!(*recorder.taken.borrow(), [7u8; 300]);
        drop(go);
        client.join().unwrap();
    });
}
