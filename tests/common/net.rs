//! Loopback ports for the tests' TCP listeners.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A port nobody listens on now (the test then asks kmsd to bind it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits (10 s at most) until `addr` accepts TCP connections.
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the AWS endpoint did not come up on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
