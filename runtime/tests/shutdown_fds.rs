//! Dropping a runtime with connections still open closes their sockets: the closes queued
//! by its last round (as cancelled ops complete) reach the kernel. (Alone in its binary: it counts this process's fds.)

use std::future::pending;
use std::time::Duration;

use ringhop_runtime::{self as rt, net::TcpStream, Runtime};

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn dropping_a_runtime_closes_the_sockets_of_its_cancelled_tasks() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let before = fd_count();
    let runtime = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .build()
        .unwrap();
    runtime.block_on_local(move || async move {
        for _ in 0..20 {
            let stream = TcpStream::connect(addr).await.unwrap();
            // A task parked in a `recv` that never completes: when the runtime drops, the
            // op is cancelled, and the socket's last reference goes with its completion.
            drop(rt::spawn_local(async move {
                let _ = stream.recv(Vec::with_capacity(64)).await;
                pending::<()>().await;
            }));
        }
        rt::yield_now().await;
    });
    let accepted: Vec<_> = (0..20).map(|_| listener.accept().unwrap().0).collect();
    drop(runtime);
    // Our accepted ends stay open; every socket of the runtime must be gone.
    let after = fd_count();
    assert_eq!(
        after,
        before + accepted.len(),
        "{} fds leaked by dropping the runtime",
        after as i64 - (before + accepted.len()) as i64
    );
    // And the peers see the close.
    for mut stream in accepted {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut stream, &mut buf).unwrap(), 0);
    }
}
