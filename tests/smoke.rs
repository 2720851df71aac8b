use std::io::{Read, Write};

use ringhop::rt::{self, net::TcpListener};

#[test]
fn block_on_spawn_and_echo() {
    let runtime = rt::Runtime::builder().reactors(1).build().unwrap();
    assert_eq!(
        runtime.block_on(async { rt::spawn_local(async { 7 }).await }),
        7
    );
    let addr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            let stream = listener.accept().await.unwrap();
            let (res, buf) = stream.recv(Vec::with_capacity(64)).await;
            res.unwrap();
            let (res, _) = stream.send_all(buf).await;
            res.unwrap();
        });
        addr
    });
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.write_all(b"ping").unwrap();
    let mut out = [0u8; 4];
    client.read_exact(&mut out).unwrap();
    assert_eq!(&out, b"ping");
    println!(
        "{:?} {:?}",
        runtime.handles()[0].ring_flags(),
        runtime.handles()[0].stats()
    );
}
