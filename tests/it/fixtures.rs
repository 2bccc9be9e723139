//! The fixtures themselves: an address someone else holds means starting again on fresh
//! ports, and another process's answers on the port never pass for the gateway's.

use std::net::TcpListener;

use crate::support::{free_port, Client, TestServer};

#[test]
fn a_gateway_whose_listen_address_is_taken_starts_again_on_fresh_ports() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("address").port();
    let mut metrics_ports = Vec::new();
    let s = TestServer::start_with(|_| {
        let port = if metrics_ports.is_empty() {
            taken_port
        } else {
            free_port()
        };
        metrics_ports.push(port);
        (
            String::new(),
            format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
        )
    });
    assert_eq!(metrics_ports.len(), 2, "{metrics_ports:?}");
    assert_eq!(Client::new(metrics_ports[1]).get("/metrics").status, 200);
    assert_eq!(s.client().get("/auth/health").status, 200);
}

#[test]
fn a_gateway_never_takes_another_process_on_its_port_for_itself() {
    let other = TestServer::start("");
    let port = other.port;
    let refused = std::panic::catch_unwind(move || TestServer::start_on(port, "", ""))
        .map(|_| ())
        .expect_err("started on a port another gateway holds");
    let why = refused
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(why.contains("cannot listen on"), "{why}");
    assert_eq!(other.client().get("/auth/health").status, 200);
}
