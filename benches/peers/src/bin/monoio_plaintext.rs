//! monoio's plaintext server as its own benchmarks write it: one io_uring thread
//! (COOP_TASKRUN), a task per connection, a hand-written httparse loop answering every
//! pipelined request of a read with one write. No pipes, no router, no limits: the
//! "application on a bare io_uring runtime" reference point.
//!
//! `ADDR=127.0.0.1:9000 cargo run --release --manifest-path benches/peers/Cargo.toml --bin monoio_plaintext`

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: monoio\r\nDate: Mon, 23 Nov 2026 19:06:43 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

fn main() {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9000".to_owned());
    let mut runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .uring_builder(io_uring_builder())
        .enable_timer()
        .build()
        .expect("monoio io_uring runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(&addr).expect("bind");
        println!("monoio listening on http://{addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            monoio::spawn(serve(stream));
        }
    });
}

fn io_uring_builder() -> io_uring::Builder {
    let mut builder = io_uring::IoUring::builder();
    builder.setup_coop_taskrun();
    builder
}

async fn serve(mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        let spare = buf.capacity() - buf.len();
        if spare < 4096 {
            buf.reserve(4096);
        }
        let filled = buf.len();
        let (res, back) = stream.read(buf.slice_mut(filled..)).await;
        buf = back.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut consumed = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[consumed..]) {
                Ok(httparse::Status::Complete(n)) => {
                    consumed += n;
                    out.extend_from_slice(RESPONSE);
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            }
        }
        buf.drain(..consumed);
        if !out.is_empty() {
            let (res, back) = stream.write_all(out).await;
            out = back;
            out.clear();
            if res.is_err() {
                return;
            }
        }
    }
}
