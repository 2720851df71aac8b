//! A real external client: curl (installed by .ci/run) against the example's routes.

mod support;

use std::process::Command;

use ringhop_http::Config;
use support::TestServer;

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed (.ci/run installs it)");
    assert!(output.status.success(), "curl {args:?} failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n")
}

#[test]
fn curl_get_head_post_and_http_1_0() {
    let server = TestServer::start(Config::default(), support::app::router());
    let base = format!("http://{}", server.addr);

    let get = curl(&[&format!("{base}/plaintext")]);
    assert!(get.starts_with("HTTP/1.1 200 OK\n"), "{get}");
    assert!(get.contains("\nContent-Length: 13\n"));
    assert!(get.ends_with("\n\nHello, World!"), "{get}");

    let head = curl(&["-I", &format!("{base}/plaintext")]);
    assert!(head.starts_with("HTTP/1.1 200 OK\n"), "{head}");
    assert!(head.contains("Content-Length: 13"));
    assert!(!head.contains("Hello"));

    let post = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: text/x-test",
        "--data-binary",
        "posted body",
        &format!("{base}/echo"),
    ]);
    assert!(post.contains("Content-Type: text/x-test"), "{post}");
    assert!(post.ends_with("\n\nposted body"), "{post}");

    let old = curl(&["--http1.0", &format!("{base}/")]);
    assert!(old.starts_with("HTTP/1.0 200 OK\n"), "{old}");
    assert!(old.ends_with("Hello, World!"));

    let missing = curl(&[&format!("{base}/missing")]);
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let wrong = curl(&["-X", "PUT", &format!("{base}/plaintext")]);
    assert!(wrong.starts_with("HTTP/1.1 405"), "{wrong}");
    assert!(wrong.contains("Allow: GET, HEAD"), "{wrong}");
}

#[test]
fn curl_uploads_3_mb_with_expect_100_continue_without_a_stall() {
    let server = TestServer::start(Config::default(), support::app::router());
    let dir = std::env::temp_dir().join(format!("ringhop-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (upload, echoed) = (dir.join("upload"), dir.join("echoed"));
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&upload, &body).unwrap();
    // curl's defaults: over 1 MiB it sends `Expect: 100-continue` and waits up to 1 s for
    // the interim response. The handler sets Content-Type before it reads the body.
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-H", "Content-Type: a/b"])
        .arg("--data-binary")
        .arg(format!("@{}", upload.display()))
        .arg("-o")
        .arg(&echoed)
        .args(["-w", "%{http_code} %{time_total}"])
        .arg(format!("http://{}/echo", server.addr))
        .output()
        .expect("curl is installed (.ci/run installs it)");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "curl failed: {report} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (code, seconds) = report.split_once(' ').unwrap();
    assert_eq!(code, "200");
    let seconds: f64 = seconds.parse().unwrap();
    assert!(
        seconds < 0.9,
        "took {seconds} s: curl waited for a 100 Continue"
    );
    let echoed_body = std::fs::read(&echoed).unwrap();
    assert!(echoed_body == body, "the echo differs from the upload");
    let _ = std::fs::remove_dir_all(&dir);
}
