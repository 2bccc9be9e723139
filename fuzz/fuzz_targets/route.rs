//! Path normalisation and route matching: normalising never panics, a normalised path is a
//! fixed point, and the path an upstream receives (raw when canonical, else the canonical
//! form) means exactly the path the decision was made on.
#![no_main]

use std::sync::OnceLock;

use authgate::config::Config;
use authgate::policy::path::{classify_path, normalise_path, normalise_path_bytes};
use authgate::policy::routes::find_route;
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
    let Ok(normal) = normalise_path_bytes(data) else {
        assert!(classify_path(data).is_err(), "classify and normalise disagree");
        return;
    };
    assert!(normal.starts_with('/'));
    assert_eq!(normalise_path(&normal).as_deref(), Ok(normal.as_str()), "not a fixed point");
    let forms = classify_path(data).unwrap_or_else(|e| panic!("normalised but not classified: {e}"));
    assert_eq!(forms.matched, normal);
    // What the upstream receives: the raw path only when it already is the canonical form.
    let forwarded: &[u8] = if forms.raw_is_canonical { data } else { forms.canonical.as_bytes() };
    let again = classify_path(forwarded).unwrap_or_else(|e| panic!("forwarded form refused: {e}"));
    // It means exactly what was decided on, to a decoding and to a non-decoding app alike.
    assert_eq!(again.matched, forms.matched, "the upstream would route elsewhere");
    assert!(again.raw_is_canonical && again.unambiguous, "forwarded form is not canonical");
    for method in [Method::GET, Method::POST] {
        let decided = find_route(routes, "h", &forms.matched, &method).map(|r| r.map(|(i, _)| i));
        let upstream = find_route(routes, "h", &again.matched, &method).map(|r| r.map(|(i, _)| i));
        assert_eq!(decided, upstream);
    }
});
