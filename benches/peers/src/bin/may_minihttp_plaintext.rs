//! may_minihttp's plaintext server (stackful coroutines on epoll), as in its own examples
//! and the TechEmpower entry: one worker thread here, to match one ringhop reactor.
//!
//! `ADDR=127.0.0.1:9000 cargo run --release --manifest-path benches/peers/Cargo.toml --bin may_minihttp_plaintext`

use std::io;

use may_minihttp::{HttpServer, HttpService, Request, Response};

#[derive(Clone)]
struct Plaintext;

impl HttpService for Plaintext {
    fn call(&mut self, _req: Request, res: &mut Response) -> io::Result<()> {
        res.header("Content-Type: text/plain").body("Hello, World!");
        Ok(())
    }
}

fn main() {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:9000".to_owned());
    may::config().set_workers(1);
    let server = HttpServer(Plaintext).start(&addr).expect("start");
    println!("may_minihttp listening on http://{addr}");
    server.join().expect("join");
}
