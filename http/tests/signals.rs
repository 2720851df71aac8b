//! SIGINT/SIGTERM handling: the signals are blocked on every reactor while a server runs
//! (before its watcher starts), and every thread gets its mask back when `run` returns.
//! (The second-signal exit is tested on the hello example, in its own process.)

#[path = "../../tests/common/net.rs"]
mod net;

use std::sync::{mpsc, Arc};
use std::time::Duration;

use ringhop_http::{Request, Response, Router, Server};
use ringhop_runtime::Runtime;

fn sigint_blocked() -> bool {
    // SAFETY: all-zero is a valid sigset_t for the kernel to overwrite; a null new mask only
    // reads the calling thread's mask.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        libc::sigismember(&mask, libc::SIGINT) == 1
    }
}

async fn mask(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.body(if sigint_blocked() {
        b"blocked"
    } else {
        b"open"
    });
    Ok(())
}

#[test]
fn signals_are_blocked_while_serving_and_masks_restored_after() {
    let runtime = Arc::new(
        Runtime::builder()
            .reactors(1)
            .pin_cores(false)
            .build()
            .unwrap(),
    );
    let addr = net::free_local_addr();
    let (listening, is_listening) = mpsc::channel();
    let server_runtime = runtime.clone();
    let server = std::thread::spawn(move || {
        Server::bind(addr)
            .on_listening(move |_| listening.send(()).unwrap())
            .run(&server_runtime, Router::new().get("/mask", mask))
            .unwrap();
        sigint_blocked()
    });
    is_listening.recv_timeout(Duration::from_secs(10)).unwrap();
    // The watcher is installed right after `on_listening`: poll until the reactor blocks.
    let mut seen = String::new();
    for _ in 0..100 {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(
            &mut stream,
            b"GET /mask HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        seen.clear();
        std::io::Read::read_to_string(&mut stream, &mut seen).unwrap();
        if seen.ends_with("blocked") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        seen.ends_with("blocked"),
        "the reactor serves with SIGINT unblocked: {seen}"
    );
    ringhop_http::trigger_shutdown(&runtime);
    let caller_blocked = server.join().unwrap();
    assert!(
        !caller_blocked,
        "run returned with SIGINT still blocked on its thread"
    );
    let (tx, rx) = mpsc::channel();
    runtime.handles()[0]
        .post(move || tx.send(sigint_blocked()).unwrap())
        .unwrap();
    let reactor_blocked = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        !reactor_blocked,
        "the reactor kept SIGINT blocked after run returned"
    );
}
