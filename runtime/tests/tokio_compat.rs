//! The side tokio runtime (feature `tokio-compat`): tokio's timers, sockets and spawned tasks
//! work inside ringhop tasks, whose polls all stay on their reactor; without it, tokio calls
//! fail as they do outside any tokio runtime.
#![cfg(feature = "tokio-compat")]

use std::rc::Rc;
use std::time::{Duration, Instant};

use ringhop_runtime::{spawn_local, Runtime};

fn off_reactor_polls(rt: &Runtime) -> u64 {
    rt.handles()
        .iter()
        .map(|h| h.stats().off_reactor_polls)
        .sum()
}

#[test]
fn tokio_timers_tasks_and_sockets_inside_reactor_tasks() {
    let rt = Runtime::builder()
        .reactors(2)
        .pin_cores(false)
        .tokio_compat(1)
        .build()
        .unwrap();
    assert!(rt.tokio_handle().is_some());
    let results = rt.run(|| async {
        // A !Send ringhop task: it can only be polled here, on its reactor.
        let here = Rc::new(std::thread::current().id());
        let task = spawn_local(async move {
            let started = Instant::now();
            tokio::time::sleep(Duration::from_millis(30)).await;
            let slept = started.elapsed();
            // Woken by tokio's timer thread, polled again on this reactor.
            assert_eq!(*here, std::thread::current().id());

            // tokio::spawn: runs on the side runtime's threads.
            let spawned_on = tokio::spawn(async {
                std::thread::current().name().unwrap_or_default().to_owned()
            })
            .await
            .unwrap();

            // tokio::net: a tokio listener and client, driven by the side runtime.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                stream.writable().await.unwrap();
                stream.try_write(b"from tokio").unwrap()
            });
            let client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 32];
            let mut got = 0;
            while got < 10 {
                client.readable().await.unwrap();
                match client.try_read(&mut buf[got..]) {
                    Ok(n) => got += n,
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(err) => panic!("{err}"),
                }
            }
            assert_eq!(server.await.unwrap(), 10);
            assert_eq!(*here, std::thread::current().id());
            (slept, spawned_on, buf[..got].to_vec())
        });
        task.await
    });
    for (slept, spawned_on, received) in results {
        assert!(slept >= Duration::from_millis(30), "{slept:?}");
        assert!(spawned_on.ends_with("-tokio"), "ran on {spawned_on:?}");
        assert_eq!(received, b"from tokio");
    }
    assert_eq!(off_reactor_polls(&rt), 0);
}

#[test]
fn without_the_side_runtime_tokio_calls_fail_as_outside_tokio() {
    let rt = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .build()
        .unwrap();
    assert!(rt.tokio_handle().is_none());
    let outcome = rt.block_on_local(|| async {
        spawn_local(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
        })
        .try_join()
        .await
    });
    let err = outcome.expect_err("tokio's timer worked without a tokio runtime");
    assert!(err.is_panic());
}
