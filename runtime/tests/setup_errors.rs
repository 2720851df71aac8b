//! A runtime that cannot set up io_uring says why and what to do.
//!
//! The parent test re-runs this binary as a child that installs a seccomp filter denying
//! `io_uring_setup` with EPERM (what Docker's default profile does), then builds a runtime.

use std::process::Command;

use ringhop_runtime::Runtime;

const CHILD_ENV: &str = "RINGHOP_SECCOMP_CHILD";

/// Denies `io_uring_setup` with EPERM for this thread and the threads it creates.
fn deny_io_uring_setup() {
    let filter = [
        // Load the syscall number.
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        // io_uring_setup? fall through to EPERM, else skip to ALLOW.
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain prctl calls with a valid, live filter program.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ),
            0,
            "installing the seccomp filter failed"
        );
    }
}

#[test]
fn child_under_seccomp() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    deny_io_uring_setup();
    match Runtime::builder().reactors(1).build() {
        Ok(_) => println!("CHILD-RESULT: runtime built despite seccomp"),
        Err(err) => println!("CHILD-RESULT: {err}"),
    }
}

#[test]
fn io_uring_denied_by_seccomp_names_cause_and_fix() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_under_seccomp",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.split_once("CHILD-RESULT: ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("child printed no result:\n{stdout}"));
    assert!(
        line.starts_with("io_uring_setup failed: EPERM"),
        "unexpected error: {line}"
    );
    assert!(line.contains("seccomp"), "no cause named: {line}");
    assert!(
        line.contains("kernel.io_uring_disabled"),
        "no fix named: {line}"
    );
}
