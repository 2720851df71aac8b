//! A thread-per-core TCP echo server: every reactor binds the same address (SO_REUSEPORT) and
//! echoes its own connections; nothing ever hops between threads.
//!
//! ```text
//! cargo run --release --example echo          # ADDR=127.0.0.1:7000, REACTORS=all cores
//! printf 'hello\n' | nc -q1 127.0.0.1 7000    # prints hello
//! ```

mod common;

use std::net::SocketAddr;

use ringhop::rt::{self, net::TcpListener};

fn main() -> std::process::ExitCode {
    common::exit_on_error("echo", run)
}

fn run() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:7000".to_owned())
        .parse()
        .map_err(|err| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("ADDR: {err}"))
        })?;
    let mut builder = rt::Runtime::builder();
    if let Some(reactors) = std::env::var("REACTORS").ok().and_then(|n| n.parse().ok()) {
        builder.reactors(reactors);
    }
    let runtime = builder.build()?;
    println!(
        "echo listening on {addr} with {} reactors ({})",
        runtime.handles().len(),
        runtime.driver()
    );
    for result in runtime.run(move || serve(addr)) {
        result?;
    }
    Ok(())
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(err) => {
                // Out of fds or a connection that died in the backlog: keep serving the rest.
                eprintln!("echo: accept failed: {err}");
                rt::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        rt::spawn_local(async move {
            let mut buf = Vec::with_capacity(16 * 1024);
            loop {
                let (res, filled) = stream.recv(buf).await;
                match res {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let (res, sent) = stream.send_all(filled).await;
                if res.is_err() {
                    break;
                }
                buf = sent;
                buf.clear();
            }
        });
    }
}
