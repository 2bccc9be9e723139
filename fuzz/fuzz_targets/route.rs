//! Path normalisation and route matching: normalising never panics, a normalised path is a
//! fixed point, and the decision for a path equals the decision for its normalised form.
#![no_main]

use std::sync::OnceLock;

use authgate::config::Config;
use authgate::proxy::routing::{find_route, normalise_path, normalise_path_bytes};
use http::Method;
use libfuzzer_sys::fuzz_target;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_toml(
            r#"
            [[routes]]
            path = "/admin"
            policy = "deny"
            [[routes]]
            path = "/api/v1"
            methods = ["GET"]
            policy = "public"
            [[routes]]
            path = "/files/100%25"
            policy = "public"
            [[routes]]
            path = "/caf%C3%A9"
            policy = "authenticated"
            groups = ["x"]
            [[routes]]
            path = "/"
            policy = "authenticated"
            "#,
        )
        .unwrap_or_else(|e| panic!("fuzz config: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let routes = &config().routes;
    let Ok(normal) = normalise_path_bytes(data) else { return };
    assert!(normal.starts_with('/'));
    assert_eq!(normalise_path(&normal).as_deref(), Ok(normal.as_str()), "not a fixed point");
    for method in [Method::GET, Method::POST] {
        let direct = find_route(routes, "h", &normal, &method).map(|(i, _)| i);
        let again = normalise_path(&normal)
            .ok()
            .and_then(|n| find_route(routes, "h", &n, &method).map(|(i, _)| i));
        assert_eq!(direct, again);
    }
});
