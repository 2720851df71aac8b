//! Echo over many connections on several reactors, with std clients on plain threads.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use ringhop_runtime::{self as rt, net::TcpListener, net::TcpStream};

/// The fd-count check is process-wide: tests in this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Connections accepted per reactor.
static ACCEPTED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

async fn echo_server(listener: TcpListener) {
    while let Ok(stream) = listener.accept().await {
        ACCEPTED[rt::current().index()].fetch_add(1, Ordering::Relaxed);
        rt::spawn_local(async move {
            let mut buf = Vec::with_capacity(4096);
            loop {
                let (res, filled) = stream.recv(buf).await;
                if !matches!(res, Ok(n) if n > 0) {
                    break;
                }
                let (res, mut sent) = stream.send_all(filled).await;
                if res.is_err() {
                    break;
                }
                sent.clear();
                buf = sent;
            }
        });
    }
}

#[test]
fn echo_many_connections_on_several_reactors() {
    let _serial = serial();
    let runtime = common::runtime(2);
    let fds_before = common::open_fds();
    // Reactor 0 binds port 0; the others bind the same port (SO_REUSEPORT).
    let addr: SocketAddr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(echo_server(listener));
        addr
    });
    for handle in &runtime.handles()[1..] {
        // The JoinHandle is Send: the test thread blocks on it through reactor 0.
        runtime.block_on(handle.spawn(move || async move {
            let listener = TcpListener::bind(addr).unwrap();
            rt::spawn_local(echo_server(listener));
        }));
    }
    let clients: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for c in 0..16 {
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    for round in 0..8 {
                        let message =
                            format!("client {t}/{c} round {round} {}", "x".repeat(round * 100));
                        stream.write_all(message.as_bytes()).unwrap();
                        let mut echoed = vec![0; message.len()];
                        stream.read_exact(&mut echoed).unwrap();
                        assert_eq!(echoed, message.as_bytes());
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    for handle in runtime.handles() {
        assert_eq!(handle.stats().off_reactor_polls, 0);
    }
    // SO_REUSEPORT spread the 128 connections over both reactors' listeners.
    let accepted: Vec<usize> = ACCEPTED.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    assert_eq!(accepted.iter().sum::<usize>(), 128);
    assert!(
        accepted.iter().all(|&n| n > 0),
        "one reactor accepted nothing: {accepted:?}"
    );
    // Every socket the servers accepted is closed again.
    let listeners = runtime.handles().len();
    assert!(
        common::eventually(Duration::from_secs(5), || common::open_fds()
            <= fds_before + listeners),
        "fd count {} did not return to {} + {listeners} listeners",
        common::open_fds(),
        fds_before
    );
}

#[test]
fn ringhop_client_to_ringhop_server_with_writev_and_shutdown() {
    let _serial = serial();
    let runtime = common::runtime(1);
    let received = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn_local(async move {
            let stream = listener.accept().await.unwrap();
            assert_eq!(stream.local_addr().unwrap(), addr);
            let mut all = Vec::new();
            loop {
                let (res, buf) = stream.recv(Vec::with_capacity(7)).await;
                match res.unwrap() {
                    0 => break,
                    _ => all.extend_from_slice(&buf),
                }
            }
            stream.close().await.unwrap();
            all
        });
        let client = TcpStream::connect(addr).await.unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        let (res, _) = client
            .writev(vec![
                b"hello ".to_vec(),
                b"vectored ".to_vec(),
                b"world".to_vec(),
            ])
            .await;
        assert_eq!(res.unwrap(), 20);
        let (res, _) = client.send(&b"!"[..]).await;
        assert_eq!(res.unwrap(), 1);
        client.shutdown(std::net::Shutdown::Write).await.unwrap();
        server.await
    });
    assert_eq!(received, b"hello vectored world!");
}

#[test]
fn connect_to_closed_port_is_an_error() {
    let _serial = serial();
    let runtime = common::runtime(1);
    let result = runtime.block_on_local(|| async {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        TcpStream::connect(port).await.map(drop)
    });
    assert_eq!(
        result.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

#[test]
fn multishot_recv_delivers_every_byte_and_eof() {
    let _serial = serial();
    let runtime = common::runtime(1);
    let addr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            let stream = listener.accept().await.unwrap();
            let mut chunks = stream.recv_multishot().unwrap();
            let mut total = Vec::new();
            loop {
                let chunk = chunks.recv().await.unwrap();
                if chunk.is_empty() {
                    break;
                }
                total.extend_from_slice(&chunk);
            }
            let (res, _) = stream
                .send_all((total.len() as u64).to_le_bytes().to_vec())
                .await;
            res.unwrap();
            let digest: u64 = total.iter().map(|&b| b as u64).sum();
            let (res, _) = stream.send_all(digest.to_le_bytes().to_vec()).await;
            res.unwrap();
        });
        addr
    });
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    // More than the ring holds (256 × 16 KiB), so buffers must be recycled along the way.
    let payload: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8).collect();
    client.write_all(&payload).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = [0u8; 16];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(
        u64::from_le_bytes(reply[..8].try_into().unwrap()),
        payload.len() as u64
    );
    let digest: u64 = payload.iter().map(|&b| b as u64).sum();
    assert_eq!(u64::from_le_bytes(reply[8..].try_into().unwrap()), digest);
}

/// Several tasks may wait in `accept` on one listener (it takes `&self`, as tokio's does):
/// each connection wakes a waiting task. The multishot accept kept one waker, the last
/// task's, so once that task stopped accepting the others were never woken (io_uring).
#[test]
fn tasks_sharing_a_listener_are_all_woken() {
    let _serial = serial();
    let runtime = common::runtime(1);
    let accepted = runtime.block_on_local(|| async {
        let listener = std::rc::Rc::new(TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap());
        let addr = listener.local_addr().unwrap();
        // Two tasks, each accepting one connection, both waiting before any arrives.
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let listener = listener.clone();
                rt::spawn_local(async move { listener.accept().await.is_ok() })
            })
            .collect();
        rt::yield_now().await;
        let clients = std::thread::spawn(move || {
            (0..2)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect::<Vec<_>>()
        });
        let mut accepted = 0;
        for task in tasks {
            if let Ok(true) = rt::time::timeout(Duration::from_secs(3), task).await {
                accepted += 1;
            }
        }
        drop(clients.join().unwrap());
        accepted
    });
    assert_eq!(accepted, 2, "a task waiting in accept was never woken");
}

#[test]
fn accept_one_takes_one_connection_per_call_and_tasks_sharing_it_are_woken() {
    let rt = common::runtime(1);
    let served = rt.block_on_local(|| async {
        let listener = std::rc::Rc::new(TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap());
        let addr = listener.local_addr().unwrap();
        // Two tasks wait on the same listener; three clients connect.
        let accepted = std::rc::Rc::new(std::cell::Cell::new(0));
        for _ in 0..2 {
            let (listener, accepted) = (listener.clone(), accepted.clone());
            rt::spawn_local(async move {
                while listener.accept_one().await.is_ok() {
                    accepted.set(accepted.get() + 1);
                }
            });
        }
        rt::time::sleep(Duration::from_millis(20)).await;
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        for _ in 0..100 {
            if accepted.get() == 3 {
                break;
            }
            rt::time::sleep(Duration::from_millis(10)).await;
        }
        drop(clients);
        accepted.get()
    });
    assert_eq!(served, 3);
}

#[test]
fn a_connection_accepted_for_an_accept_one_nobody_took_is_closed() {
    // The single-shot accept completed, but its listener was dropped before the connection
    // was taken: the accepted socket must be closed, not leaked.
    let rt = common::runtime(1);
    let client = rt.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        {
            let mut accept = std::pin::pin!(listener.accept_one());
            let polled = std::future::poll_fn(|cx| Poll::Ready(accept.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "nobody connected yet");
        }
        let client = std::net::TcpStream::connect(addr).unwrap();
        // The accept completes (io_uring) while nobody polls it.
        rt::time::sleep(Duration::from_millis(50)).await;
        drop(listener);
        rt::time::sleep(Duration::from_millis(50)).await;
        client
    });
    // Closed, the server's side ends the connection; leaked, it would hold it open. (Not an
    // fd count: the other tests of this binary open and close fds meanwhile.)
    let mut client = client;
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut byte = [0u8; 1];
    let read = client.read(&mut byte);
    assert!(
        matches!(&read, Ok(0))
            || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the server side is still open: {read:?}"
    );
}
