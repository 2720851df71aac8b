//! A line-based key/value service built directly on `DuplexPipe`: how to write your own
//! protocol on ringhop's pipes.
//!
//! ```text
//! cargo run --release --example lines          # ADDR=127.0.0.1:7001, REACTORS=all cores
//! printf 'SET greeting hello\nGET greeting\nGET nope\n' | nc -q1 127.0.0.1 7001
//! # OK
//! # hello
//! # NOT_FOUND
//! ```
//!
//! Commands: `SET key value`, `GET key`, `DEL key`, `QUIT`. Each reactor keeps its own map
//! (thread-per-core: no locks), so a key set on one connection is visible to connections
//! served by the same reactor.
//!
//! The parser shows the `advance_to(consumed, examined)` contract: complete lines are
//! consumed; an incomplete tail is examined but not consumed, so the next `read` waits for
//! more bytes instead of spinning, and the bytes stay in the pipe (across segment
//! boundaries) until the line is complete.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use ringhop::pipes::{self, DuplexPipe, PipeWriter};
use ringhop::rt::{self, net::TcpListener};

/// Longest accepted line; a longer one is a protocol error.
const MAX_LINE: usize = 8 * 1024;

pub(crate) type Store = Rc<RefCell<HashMap<Vec<u8>, Vec<u8>>>>;

fn main() -> std::process::ExitCode {
    common::exit_on_error("lines", run)
}

fn run() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:7001".to_owned())
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
        "lines listening on {addr} with {} reactors ({})",
        runtime.handles().len(),
        runtime.driver()
    );
    for result in runtime.run(move || async move {
        let listener = TcpListener::bind(addr)?;
        let store: Store = Rc::default();
        loop {
            match listener.accept().await.and_then(pipes::connect) {
                Ok(pipe) => drop(rt::spawn_local(serve(pipe, store.clone()))),
                Err(err) => {
                    // Out of fds or a connection that died in the backlog: keep serving.
                    eprintln!("lines: accept failed: {err}");
                    rt::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    }) {
        result?;
    }
    Ok(())
}

pub(crate) async fn serve(mut pipe: DuplexPipe, store: Store) {
    let mut line = Vec::with_capacity(256);
    while let Ok(result) = pipe.input.read().await {
        let (len, completed) = (result.len(), result.is_completed());
        let mut consumed = 0;
        let mut quit = false;
        // Answer the complete lines of this read, then flush once; or fewer, when their
        // answers reach the output pipe's pause threshold (see below).
        let mut too_long = false;
        let mut over = false;
        while let Some(end) = find_newline(&result, consumed) {
            // A complete line over the limit is as much an error as an incomplete one: the
            // limit must not depend on how the bytes were split into reads.
            if end - consumed > MAX_LINE {
                too_long = true;
                break;
            }
            line.clear();
            line.resize(end - consumed, 0);
            result.copy_to(consumed, &mut line);
            consumed = end + 1;
            quit = !answer(&line, &store, &mut pipe.output);
            if quit {
                break;
            }
            // Backpressure for a client that sends commands without reading the answers:
            // a short command can have a long answer, so a read's worth of commands (up to
            // the inbound pipe's megabyte) could otherwise buffer gigabytes of output
            // before the flush below waits for the peer.
            let out = &pipe.output;
            if out.pause_threshold() > 0 && out.unflushed_len() >= out.pause_threshold() {
                over = true;
                break;
            }
        }
        too_long |= !quit && !over && len - consumed > MAX_LINE;
        if too_long {
            pipe.output.write(b"ERR line too long\n");
        }
        // Complete lines are consumed; the partial tail is examined, so we wait for more.
        // Lines left unanswered are not examined: the next read returns them at once.
        let examined = if over { consumed } else { len };
        if pipe.input.advance_to(consumed, examined).is_err() {
            break;
        }
        let flushed = pipe.output.flush().await;
        if quit || too_long || (completed && !over) || flushed.map_or(true, |r| r.completed) {
            break;
        }
    }
    pipe.output.complete(None);
}

/// Position of the next `\n` at or after `from`.
fn find_newline(result: &pipes::ReadResult<'_>, from: usize) -> Option<usize> {
    let mut offset = 0;
    for chunk in result.chunks() {
        let skip = from.saturating_sub(offset).min(chunk.len());
        if let Some(i) = chunk[skip..].iter().position(|&b| b == b'\n') {
            return Some(offset + skip + i);
        }
        offset += chunk.len();
    }
    None
}

/// Writes the reply to one line; returns `false` when the client asked to quit.
fn answer(line: &[u8], store: &Store, out: &mut PipeWriter) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let command = parts.next().unwrap_or_default();
    let key = parts.next();
    let value = parts.next();
    match (command, key, value) {
        (b"SET", Some(key), Some(value)) => {
            store.borrow_mut().insert(key.to_vec(), value.to_vec());
            out.write(b"OK\n");
        }
        (b"GET", Some(key), None) => match store.borrow().get(key) {
            Some(value) => {
                out.write(value);
                out.write(b"\n");
            }
            None => out.write(b"NOT_FOUND\n"),
        },
        (b"DEL", Some(key), None) => {
            let removed = store.borrow_mut().remove(key).is_some();
            out.write(if removed { b"OK\n" } else { b"NOT_FOUND\n" });
        }
        (b"QUIT", None, None) => {
            out.write(b"BYE\n");
            return false;
        }
        _ => out.write(b"ERR unknown command\n"),
    }
    true
}
