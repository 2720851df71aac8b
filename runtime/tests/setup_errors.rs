//! Where io_uring is refused, a runtime still runs (on epoll) unless io_uring was demanded,
//! and then it says why and what to do.
//!
//! The parent test re-runs this binary as a child that installs a seccomp filter denying
//! `io_uring_setup` with EPERM (what Docker's default profile does), then builds a runtime.

use std::process::Command;

use ringhop_runtime::{self as rt, Driver, Runtime};

#[path = "../../tests/common/seccomp.rs"]
mod seccomp;

const CHILD_ENV: &str = "RINGHOP_SECCOMP_CHILD";

/// The child: builds a runtime asking for the driver named by `CHILD_ENV`, and if that works,
/// echoes a few bytes over TCP on it.
#[test]
fn child_under_seccomp() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    seccomp::deny_io_uring_setup();
    let requested = if mode == "io_uring" {
        Driver::IoUring
    } else {
        Driver::Auto
    };
    let runtime = match Runtime::builder().reactors(1).driver(requested).build() {
        Ok(runtime) => runtime,
        Err(err) => {
            println!("CHILD-RESULT: error: {err}");
            return;
        }
    };
    let echoed = runtime.block_on_local(|| async {
        let listener = rt::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn_local(async move {
            let stream = listener.accept().await.unwrap();
            let (n, buf) = stream.recv(Vec::with_capacity(64)).await;
            let n = n.unwrap();
            let (sent, _) = stream.send_all(buf[..n].to_vec()).await;
            sent.unwrap();
        });
        let client = rt::net::TcpStream::connect(addr).await.unwrap();
        let (sent, _) = client.send_all(b"ping".to_vec()).await;
        sent.unwrap();
        let (n, buf) = client.recv(Vec::with_capacity(64)).await;
        server.await;
        String::from_utf8_lossy(&buf[..n.unwrap()]).into_owned()
    });
    println!("CHILD-RESULT: {} echoed {echoed}", runtime.driver());
}

/// Runs the child with `mode` (and `RINGHOP_DRIVER` as given) and returns its result line.
fn child(mode: &str, env_driver: Option<&str>) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_under_seccomp",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env_remove("RINGHOP_DRIVER");
    if let Some(driver) = env_driver {
        command.env("RINGHOP_DRIVER", driver);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.split_once("CHILD-RESULT: ").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("child printed no result:\n{stdout}"))
}

fn assert_actionable(line: &str) {
    assert!(
        line.starts_with("error: io_uring_setup failed: EPERM"),
        "unexpected result: {line}"
    );
    assert!(line.contains("seccomp"), "no cause named: {line}");
    assert!(
        line.contains("kernel.io_uring_disabled"),
        "no fix named: {line}"
    );
}

#[test]
fn auto_falls_back_to_epoll_where_io_uring_is_denied() {
    assert_eq!(child("auto", None), "epoll echoed ping");
}

#[test]
fn demanding_io_uring_where_it_is_denied_names_cause_and_fix() {
    assert_actionable(&child("io_uring", None));
}

#[test]
fn the_environment_variable_overrides_the_builder() {
    assert_actionable(&child("auto", Some("io_uring")));
    assert_eq!(child("io_uring", Some("epoll")), "epoll echoed ping");
    let bad = child("auto", Some("kqueue"));
    assert!(
        bad.starts_with("error: RINGHOP_DRIVER=\"kqueue\" names no driver"),
        "{bad}"
    );
}
