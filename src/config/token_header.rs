//! `session.token_header`: the header that may carry an API token besides `Authorization`.

use super::validate::Validator;

impl Validator {
    /// `session.token_header`: a header name of its own (empty: none).
    pub(super) fn token_header(&mut self, text: &str) -> Option<http::HeaderName> {
        const KEY: &str = "session.token_header";
        if text.is_empty() {
            return None;
        }
        let Ok(name) = http::HeaderName::from_bytes(text.as_bytes()) else {
            self.problem(KEY, "must be a header name such as X-Authgate-Token");
            return None;
        };
        // Headers HTTP, the proxies in front and forward auth already give a meaning (a
        // configured identity header is stripped as a spoof before anything reads it).
        let taken = [
            "authorization",
            "proxy-authorization",
            "cookie",
            "host",
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-uri",
            "x-forwarded-method",
            "x-original-url",
            "x-original-method",
            "x-request-id",
            "remote-user",
            "remote-email",
            "remote-name",
            "remote-groups",
            "remote-user-id",
            "remote-auth-methods",
        ];
        if taken.contains(&name.as_str()) {
            self.problem(
                KEY,
                "must be a header of its own, not one HTTP already gives a meaning",
            );
            return None;
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|p| p.key).collect(),
        }
    }

    #[test]
    fn the_token_header_is_a_header_of_its_own() {
        let header = |text: &str| {
            Config::from_toml(&format!("[session]\ntoken_header = \"{text}\"\n"))
                .map(|c| c.session.token_header.map(|h| h.to_string()))
                .map_err(|_| problems(&format!("[session]\ntoken_header = \"{text}\"\n")))
        };
        // (configured, accepted as)
        let cases = [
            ("X-Api-Key", Ok(Some("x-api-key".to_string()))),
            ("", Ok(None)),
            (
                "X-Original-URL",
                Err(vec!["session.token_header".to_string()]),
            ),
            ("Remote-User", Err(vec!["session.token_header".to_string()])),
            (
                "Authorization",
                Err(vec!["session.token_header".to_string()]),
            ),
            (
                "not a header",
                Err(vec!["session.token_header".to_string()]),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(header(text), want, "{text:?}");
        }
        let default = Config::from_toml("").expect("defaults");
        assert_eq!(
            default.session.token_header.map(|h| h.to_string()),
            Some("x-authgate-token".to_string())
        );
    }
}
