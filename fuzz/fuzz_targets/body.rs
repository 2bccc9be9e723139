//! Request body decoding: any bytes under any of the accepted content types give a body or a
//! client error (never a panic, never a 5xx), and field extraction reports problems per field.
#![no_main]

use authgate::api::{form_or_json_body, ApiRequest};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (kind, body) = data.split_first().unwrap_or((&0, &[]));
    let content_type = match kind % 4 {
        0 => "application/json",
        1 => "application/x-www-form-urlencoded",
        2 => "application/json; charset=utf-8",
        _ => "text/plain",
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    let req = ApiRequest {
        method: Method::POST,
        path: "/login".into(),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        client_ip: [127, 0, 0, 1].into(),
        peer_ip: [127, 0, 0, 1].into(),
        scheme: "http",
    };
    match form_or_json_body(&req) {
        Ok(mut b) => {
            let _ = b.required_text(&["identifier", "email", "username"]);
            let _ = b.text(&["password"]);
            let _ = b.flag(&["remember"]);
            let _ = b.value(&["groups"]);
            if let Err(e) = b.finish() {
                assert!(e.status().is_client_error());
            }
        }
        Err(e) => assert!(e.status().is_client_error(), "{e:?}"),
    }
});
