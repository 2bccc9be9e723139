//! A bare Pingora proxy, the yardstick for authgate's own cost: `upstream_peer` and nothing
//! else, with the gateway's thread settings and allocator. `benches/load.sh` runs it beside
//! authgate and nginx.
//!
//!   bare_proxy LISTEN UPSTREAM THREADS [per-thread|shared]
//!
//! `per-thread` (the default) is authgate's shape, nginx's workers with `reuseport`: one
//! service per thread, each on its own single-threaded runtime with its own listening socket
//! (`SO_REUSEPORT`, through the patch in `vendor/`), accept loop and upstream pool. `shared` is
//! Pingora's usual shape: one service whose accept loop and upstream pool all threads share
//! (work stealing off).

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::listeners::TcpSocketOptions;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bare_proxy LISTEN UPSTREAM THREADS [per-thread|shared]";
    let (Some(listen), Some(upstream), Some(threads)) = (args.get(1), args.get(2), args.get(3))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (Ok(upstream), Ok(threads)) = (upstream.parse::<SocketAddr>(), threads.parse::<usize>())
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let per_thread = match args.get(4).map(String::as_str) {
        None | Some("per-thread") => true,
        Some("shared") => false,
        Some(_) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let conf = ServerConf {
        threads: threads.max(1),
        work_stealing: false,
        daemon: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let services = if per_thread { threads.max(1) } else { 1 };
    for _ in 0..services {
        let mut proxy =
            pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream });
        if per_thread {
            proxy.threads = Some(1);
            let mut own_socket = TcpSocketOptions::default();
            own_socket.so_reuseport = Some(true);
            proxy.add_tcp_with_settings(listen, own_socket);
        } else {
            proxy.add_tcp(listen);
        }
        server.add_service(proxy);
    }
    server.run(RunArgs::default());
}
