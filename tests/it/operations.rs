//! Operations: HTTPS listeners (HTTP/1.1 and HTTP/2, certificate reload on SIGHUP), verified
//! HTTPS upstreams, the metrics listener, and configuration reload on SIGHUP.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::support::tls::{TestCa, TlsConn, TlsEcho};
use crate::support::{config_text, free_port, refuses_to_start_with, Client, Echo, TestServer};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn toml_path(p: &std::path::Path) -> String {
    p.display().to_string().replace('\\', "\\\\")
}

/// Poll `check` for up to 10 s.
pub(crate) fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn https_listener_speaks_http1_and_h2_and_reloads_its_certificate() {
    let ca = TestCa::new("authgate test CA");
    let certs = tempfile::tempdir().expect("dir");
    let first = ca.leaf(&["localhost", "127.0.0.1"]);
    let (cert, key) = first.write(certs.path());
    let mut tls_port = 0;
    let server = TestServer::start_with(|_| {
        tls_port = free_port();
        (
            format!(
                "tls_listen = [\"127.0.0.1:{tls_port}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
                toml_path(&cert),
                toml_path(&key)
            ),
            "[[routes]]\npath = \"/\"\nupstream = \"whoami\"\npolicy = \"public\"\n".into(),
        )
    });
    let addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().expect("addr");
    let rt = runtime();
    rt.block_on(async {
        // HTTP/2 is chosen through ALPN when offered.
        let mut h2 = TlsConn::open(addr, "localhost", &ca.der(), &[b"h2", b"http/1.1"])
            .await
            .expect("h2 connection");
        assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
        let r = h2
            .get("localhost", "/auth/health", "application/json")
            .await;
        assert_eq!(
            (r.status, r.version),
            (200, http::Version::HTTP_2),
            "{}",
            r.body
        );
        // The proxied request tells the app it came over HTTPS.
        let r = h2.get("localhost", "/who", "application/json").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let shown: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(shown["headers"]["x-forwarded-proto"], "https", "{}", r.body);

        // HTTP/1.1 for clients that offer only that (or nothing).
        let mut h1 = TlsConn::open(addr, "localhost", &ca.der(), &[b"http/1.1"])
            .await
            .expect("h1 connection");
        let r = h1
            .get("localhost", "/auth/health", "application/json")
            .await;
        assert_eq!((r.status, r.version), (200, http::Version::HTTP_11));
        assert_eq!(r.peer_cert, first.der());
        let mut plain = TlsConn::open(addr, "localhost", &ca.der(), &[])
            .await
            .expect("no-ALPN connection");
        assert_eq!(
            plain.get("localhost", "/auth/health", "*/*").await.status,
            200
        );

        // A renewed certificate is picked up on SIGHUP for new connections ...
        let second = ca.leaf(&["localhost", "127.0.0.1"]);
        second.write(certs.path());
        server.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = TlsConn::open(addr, "localhost", &ca.der(), &[b"http/1.1"])
                .await
                .expect("connection after reload");
            if c.peer_cert == second.der() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the new certificate was not served"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // ... while connections opened before keep working.
        let r = h1
            .get("localhost", "/auth/health", "application/json")
            .await;
        assert_eq!(r.status, 200);
        let r = h2
            .get("localhost", "/auth/health", "application/json")
            .await;
        assert_eq!(r.status, 200);

        // A broken renewal is refused; the working certificate stays.
        std::fs::write(&key, "not a key\n").expect("write");
        server.signal("HUP");
        let refused = server.wait_for_log("the certificate in use stays", Duration::from_secs(10));
        assert!(
            refused.contains("private key") && refused.contains(&key.display().to_string()),
            "{refused}"
        );
        let c = TlsConn::open(addr, "localhost", &ca.der(), &[b"http/1.1"])
            .await
            .expect("connection after a failed reload");
        assert_eq!(c.peer_cert, second.der());
    });
    assert_eq!(server.client().get("/auth/health").status, 200);
}

#[test]
fn unusable_certificate_files_stop_start_up_with_the_reason() {
    let ca = TestCa::new("authgate test CA");
    let dir = tempfile::tempdir().expect("dir");
    let leaf = ca.leaf(&["localhost"]);
    let (cert, key) = leaf.write(dir.path());
    let other = ca.leaf(&["localhost"]);
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).expect("write");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").expect("write");
    let missing = dir.path().join("missing.pem");

    let config = |port: u16, cert: &std::path::Path, key: &std::path::Path| {
        config_text(
            port,
            dir.path(),
            &format!(
                "tls_listen = [\"127.0.0.1:{}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
                free_port(),
                toml_path(cert),
                toml_path(key)
            ),
            "",
        )
    };
    let err = refuses_to_start_with(|port| config(port, &missing, &key)).1;
    assert!(
        err.contains("missing.pem") && err.contains("certificate"),
        "{err}"
    );
    let err = refuses_to_start_with(|port| config(port, &garbage, &key)).1;
    assert!(err.contains("garbage.pem"), "{err}");
    let err = refuses_to_start_with(|port| config(port, &cert, &garbage)).1;
    assert!(
        err.contains("garbage.pem") && err.contains("private key"),
        "{err}"
    );
    let err = refuses_to_start_with(|port| config(port, &cert, &other_key)).1;
    assert!(err.contains("does not belong"), "{err}");
    // tls_listen without the files is a configuration error.
    let (_, err) = refuses_to_start_with(|port| {
        config_text(
            port,
            dir.path(),
            &format!("tls_listen = [\"127.0.0.1:{}\"]", free_port()),
            "",
        )
    });
    assert!(
        err.contains("server.tls_cert") && err.contains("server.tls_key"),
        "{err}"
    );
}

#[test]
fn https_upstreams_get_sni_and_are_verified() {
    let ca = TestCa::new("upstream CA");
    let ca_dir = tempfile::tempdir().expect("dir");
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write");
    // Bind where the gateway will connect for "localhost".
    let bind = ("localhost", 0)
        .to_socket_addrs()
        .expect("resolve")
        .next()
        .expect("an address");
    let upstream = TlsEcho::start(bind, &ca.leaf(&["localhost"]));
    let port = upstream.addr.port();
    let routes = format!(
        "[[routes]]\npath = \"/named\"\nupstream = \"https://localhost:{port}\"\npolicy = \"public\"\n\
         [[routes]]\npath = \"/by-ip\"\nupstream = \"https://{}\"\npolicy = \"public\"\n",
        upstream.addr
    );
    let server = TestServer::start_full(
        &format!("upstream_ca_file = \"{}\"", toml_path(&ca_file)),
        &routes,
    );
    let mut c = server.client();
    let r = c.get("/named/x");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["sni"], "localhost");
    assert_eq!(r.json()["uri"], "/named/x");
    // The certificate names only "localhost": reaching it by address fails verification.
    assert_eq!(c.get("/by-ip/x").status, 502);

    // Without the CA the upstream's certificate is not trusted.
    let untrusting = TestServer::start(&routes);
    assert_eq!(untrusting.client().get("/named/x").status, 502);

    // An unusable CA file is refused at start-up.
    let bad = ca_dir.path().join("bad.pem");
    std::fs::write(&bad, "hello\n").expect("write");
    let (_, err) = refuses_to_start_with(|port| {
        config_text(
            port,
            ca_dir.path(),
            &format!("upstream_ca_file = \"{}\"", toml_path(&bad)),
            "",
        )
    });
    assert!(err.contains("server.upstream_ca_file"), "{err}");
}

fn scrape(port: u16) -> String {
    let mut c = Client::new(port);
    let r = c.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix:?} in\n{text}"))
}

#[test]
fn metrics_listener_serves_prometheus_text() {
    let echo = Echo::start();
    let mut metrics_port = 0;
    let server = TestServer::start_with(|_| {
        metrics_port = free_port();
        let sections = format!(
            "[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
             [[routes]]\npath = \"/public\"\nupstream = \"{up}\"\npolicy = \"public\"\n\
             [[routes]]\npath = \"/\"\nupstream = \"{up}\"\npolicy = \"authenticated\"\n",
            up = echo.upstream()
        );
        (String::new(), sections)
    });
    let mut owner = server.setup_owner();
    assert_eq!(owner.get("/app").status, 200);
    let mut anon = server.client();
    for _ in 0..3 {
        assert_eq!(anon.get("/public/x").status, 200);
    }
    assert_eq!(anon.get("/app").status, 401);
    assert_eq!(
        anon.login("owner@example.com", "wrong-password").status,
        401
    );
    assert_eq!(
        anon.login("owner@example.com", "owner-password-1").status,
        200
    );

    let text = scrape(metrics_port);
    assert_eq!(
        sample(
            &text,
            "authgate_requests_total{route=\"*/public\",policy=\"public\",status=\"200\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            "authgate_requests_total{route=\"*/\",policy=\"authenticated\",status=\"401\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "authgate_auth_decisions_total{source=\"proxy\",decision=\"login_required\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "authgate_logins_total{outcome=\"success\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "authgate_logins_total{outcome=\"invalid_credentials\"}"
        ),
        1.0
    );
    // setup + login
    assert!(sample(&text, "authgate_sessions ") >= 2.0);
    assert!(sample(&text, "authgate_upstream_seconds_count") >= 4.0);
    assert!(sample(&text, "authgate_store_seconds_count{op=\"session_check\"}") >= 1.0);
    assert!(sample(&text, "authgate_hash_wait_seconds_count") >= 2.0);
    assert_eq!(sample(&text, "authgate_hash_queue_depth "), 0.0);
    assert_eq!(sample(&text, "authgate_store_up "), 1.0);
    assert!(text.contains("# TYPE authgate_lockouts counter"), "{text}");

    let mut m = Client::new(metrics_port);
    assert_eq!(m.get("/").status, 404);
    assert_eq!(m.get("/auth/health").status, 404);
    // The gateway's own port does not serve the metrics (it is just a path there).
    let r = server.client().get("/metrics");
    assert_ne!(r.status, 200);
}

#[test]
fn sighup_reloads_routes_and_headers_and_keeps_them_on_a_bad_file() {
    let echo = Echo::start();
    let routes = |policy: &str, header: &str| {
        format!(
            "[headers]\nuser = \"{header}\"\n[[routes]]\npath = \"/\"\nupstream = \"{}\"\npolicy = \"{policy}\"\n",
            echo.upstream()
        )
    };
    let mut server = TestServer::start(&routes("authenticated", "Remote-User"));
    let mut owner = server.setup_owner();
    let r = owner.get("/app");
    assert_eq!(r.status, 200);
    assert_eq!(r.echoed_headers()["remote-user"][0], "owner");
    let write_config = |server: &TestServer, extra: &str| {
        std::fs::write(
            &server.config_path,
            config_text(server.port, server.dir.path(), "", extra),
        )
        .expect("config");
    };

    // New routes and header names apply without a restart; the session survives.
    write_config(&server, &routes("public", "X-Forwarded-User"));
    server.signal("HUP");
    eventually("the reloaded header name", || {
        owner.get("/app").echoed_headers()["x-forwarded-user"][0] == "owner"
    });
    assert!(owner
        .get("/app")
        .echoed_headers()
        .get("remote-user")
        .is_none());
    assert_eq!(server.client().get("/app").status, 200);

    write_config(&server, &routes("deny", "X-Forwarded-User"));
    server.signal("HUP");
    eventually("the deny policy", || owner.get("/app").status == 403);

    // An invalid file changes nothing.
    write_config(
        &server,
        "[[routes]]\npath = \"/\"\npolicy = \"sometimes\"\n",
    );
    server.signal("HUP");
    let refused = server.wait_for_log("was not reloaded", Duration::from_secs(10));
    assert!(refused.contains("sometimes"), "{refused}");
    assert_eq!(owner.get("/app").status, 403);
    assert_eq!(server.client().get("/auth/health").status, 200);

    // A section that needs a restart is reported as such.
    std::fs::write(
        &server.config_path,
        config_text(
            server.port,
            server.dir.path(),
            "max_body = \"1MiB\"",
            &routes("deny", "X-Forwarded-User"),
        ),
    )
    .expect("config");
    server.signal("HUP");
    let warned = server.wait_for_log("only after a restart", Duration::from_secs(10));
    assert!(warned.contains("server"), "{warned}");
    let (_, stderr) = server.stop();
    assert!(stderr.contains("was not reloaded"), "{stderr}");
    assert!(stderr.contains("sometimes"), "{stderr}");
    assert!(
        stderr.contains("only after a restart") && stderr.contains("server"),
        "{stderr}"
    );
}

fn systemd_analyze() -> &'static str {
    for p in ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"] {
        if std::path::Path::new(p).exists() {
            return p;
        }
    }
    panic!("systemd-analyze is not installed: run scripts/deps.sh (CI installs it)");
}

#[test]
fn systemd_unit_verifies_is_hardened_and_stops_in_time() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("systemd/authgate.service")).expect("unit");
    for directive in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=",
        "DynamicUser=yes",
        "StateDirectory=authgate",
        "ConfigurationDirectory=authgate",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive:?}");
    }
    // The stop timeout follows the shipped shutdown_timeout, with 2 s for the final writes.
    let shipped = std::fs::read_to_string(root.join("config.toml")).expect("config");
    let shutdown: u64 = shipped
        .lines()
        .find_map(|l| l.strip_prefix("shutdown_timeout = \""))
        .and_then(|v| v.split('s').next())
        .and_then(|n| n.parse().ok())
        .expect("shutdown_timeout in config.toml");
    assert!(
        unit.contains(&format!("TimeoutStopSec={}s", shutdown + 2)),
        "TimeoutStopSec should be shutdown_timeout + 2s"
    );

    // systemd's own checks, on a copy that points at the binary under test.
    let dir = tempfile::tempdir().expect("dir");
    let copy = dir.path().join("authgate.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/authgate", env!("CARGO_BIN_EXE_authgate")),
    )
    .expect("write");
    let out = std::process::Command::new(systemd_analyze())
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("authgate.service"),
        "systemd-analyze verify warns about the unit: {stderr}"
    );
    let out = std::process::Command::new(systemd_analyze())
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(
        exposure <= 2.0,
        "exposure {exposure} (0 = locked down, 10 = none)"
    );
}
