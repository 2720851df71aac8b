//! The handlers of the README's main example plus a few for failure cases.
#![allow(dead_code)]

use ringhop_http::{Request, Response, Router};

pub async fn plaintext(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.header("Content-Type", "text/plain")
        .body(b"Hello, World!");
    Ok(())
}

pub async fn echo(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    if let Some(content_type) = req.header("content-type") {
        res.header("Content-Type", content_type);
    }
    // The stream starts with the first chunk, so a malformed body is still answered 400.
    while let Some(chunk) = req.body().chunk().await? {
        res.write_chunk(chunk).await?;
    }
    res.finish();
    Ok(())
}

pub async fn slow(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    ringhop_runtime::time::sleep(std::time::Duration::from_millis(300)).await;
    res.body(b"slow done");
    Ok(())
}

pub async fn boom(_req: &mut Request<'_>, _res: &mut Response<'_>) -> std::io::Result<()> {
    panic!("handler panicked on purpose");
}

/// A status that cannot be a final answer, from the query (`?103`, `?42`), with a body.
pub async fn interim(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let status = req.query().and_then(|q| q.parse().ok()).unwrap_or(103);
    res.status(ringhop_http::Status(status)).body(b"x");
    Ok(())
}

pub async fn upload(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let mut body = Vec::new();
    req.body().read_to_end(&mut body).await?;
    res.body(format!("{} bytes", body.len()).as_bytes());
    Ok(())
}

/// Built with the `http` crate: reflects the request's method and a header.
pub async fn via_http(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let request = req.to_http().map_err(std::io::Error::other)?;
    let reflected = request
        .headers()
        .get("x-probe")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let response = http::Response::builder()
        .status(http::StatusCode::CREATED)
        .header("x-method", request.method().as_str())
        .body(reflected)
        .map_err(std::io::Error::other)?;
    res.send_http(response);
    Ok(())
}

pub async fn ignore_body(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.body(b"ignored");
    Ok(())
}

/// Reflects the request's authority and its raw Host field.
pub async fn authority(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let host = String::from_utf8_lossy(req.header("host").unwrap_or_default()).into_owned();
    let body = format!("authority={} host={host}", req.authority().unwrap_or("-"));
    res.body(body.as_bytes());
    Ok(())
}

/// Answers with the body's first chunk and reads no further: a handler that knows its
/// body is small and stops once it has it.
pub async fn first_chunk(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let first = req.body().chunk().await?.unwrap_or_default().to_vec();
    res.body(&first);
    Ok(())
}

/// The byte at position `i` of a `/big` body.
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// `GET /big?<MiB>`: a body of that many MiB through `Response::body`.
pub async fn big(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let mib: usize = req.query().and_then(|q| q.parse().ok()).unwrap_or(1);
    let body: Vec<u8> = (0..mib << 20).map(pattern).collect();
    res.body(&body);
    Ok(())
}

pub fn router() -> impl ringhop_http::Handler + Clone + Send + 'static {
    Router::new()
        .get("/", plaintext)
        .get("/plaintext", plaintext)
        .post("/echo", echo)
        .get("/slow", slow)
        .get("/boom", boom)
        .get("/interim", interim)
        .post("/ignore", ignore_body)
        .post("/upload", upload)
        .post("/first", first_chunk)
        .get("/authority", authority)
        .get("/big", big)
        .route("PUT", "/via-http", via_http)
}
