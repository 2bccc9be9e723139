//! Path normalisation: the one place that decides what a request path means, which form
//! routes are matched on, and which form an upstream is sent.

/// Why a path could not be normalised (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with '/'")]
    NotAbsolute,
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    #[error("the path contains a NUL byte")]
    Nul,
    #[error("the path climbs above the root")]
    AboveRoot,
    #[error("the decoded path is not valid UTF-8")]
    NotUtf8,
}

/// How many rounds of percent-decoding are applied (to see through double encoding such as
/// `%252e`); a path still holding escapes after that is refused.
const DECODE_ROUNDS: usize = 4;

/// Normalise a request path for matching: fully percent-decode (`%2F` and `%5C` become
/// separators, double encoding is seen through), treat `\` as `/`, drop `;parameters` from each
/// segment, resolve `.` and `..`, collapse duplicate slashes and drop a trailing slash.
pub fn normalise_path(raw: &str) -> Result<String, PathError> {
    normalise_path_bytes(raw.as_bytes())
}

/// [`normalise_path`] for a raw request path that may not be UTF-8.
pub fn normalise_path_bytes(raw: &[u8]) -> Result<String, PathError> {
    Ok(resolve(raw)?.0)
}

/// The forms of one request path: what routes are matched on, what an upstream is sent, and
/// whether the path as sent means the same to every common app server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathForms {
    /// Normalised (see [`normalise_path`]): routes are matched on this.
    pub matched: String,
    /// `matched` with the raw path's trailing slash kept: what an upstream receives when the
    /// raw path is not already exactly this (apps redirect `/app` to `/app/`, so the slash stays).
    pub canonical: String,
    /// The raw path is byte for byte `canonical`: it can be forwarded unchanged.
    pub raw_is_canonical: bool,
    /// The raw path differs from `canonical` at most in how harmless characters are escaped
    /// (hex case, non-ASCII or unsafe bytes sent unescaped): Express, Go, Tomcat, Flask, Rails
    /// and PHP all route it where the decision was made. False for dot segments, doubled
    /// slashes, `;` parameters, backslashes, encoded separators, encoded unreserved characters,
    /// double encoding and a `#` inside the path. Forward auth, which cannot rewrite the path
    /// its proxy forwards, refuses such paths.
    pub unambiguous: bool,
}

/// Classify a raw request path (without its query): the one place that decides what a path
/// means, what an upstream is sent, and whether a proxy that forwards it raw may be allowed.
pub fn classify_path(raw: &[u8]) -> Result<PathForms, PathError> {
    let (matched, trailing) = resolve(raw)?;
    let canonical = if trailing && matched != "/" {
        format!("{matched}/")
    } else {
        matched.clone()
    };
    let raw_is_canonical = raw == canonical.as_bytes();
    let unambiguous = raw_is_canonical || (!raw.contains(&b'#') && cosmetic(raw) == canonical);
    Ok(PathForms {
        matched,
        canonical,
        raw_is_canonical,
        unambiguous,
    })
}

/// The raw path with only cosmetic differences from the canonical form removed: escapes'
/// hex in upper case, and bytes that every server treats as themselves (non-ASCII, space,
/// `"<>[]^`{|}`) escaped. Nothing is decoded and no separator is touched.
fn cosmetic(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len() + 8);
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' && i + 2 < raw.len() && hex(raw[i + 1]).is_some() && hex(raw[i + 2]).is_some()
        {
            out.push('%');
            out.push(raw[i + 1].to_ascii_uppercase() as char);
            out.push(raw[i + 2].to_ascii_uppercase() as char);
            i += 3;
            continue;
        }
        if b >= 0x80 || b" \"<>[]^`{|}".contains(&b) {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        } else {
            out.push(b as char);
        }
        i += 1;
    }
    out
}

/// Decode and resolve a raw path: the normalised form, and whether the raw path ended in a
/// separator (or a dot segment, which RFC 3986 resolves to one).
fn resolve(raw: &[u8]) -> Result<(String, bool), PathError> {
    if !raw.starts_with(b"/") {
        return Err(PathError::NotAbsolute);
    }
    // The first round is strict: a '%' must start a valid escape.
    let mut bytes = percent_decode(raw, true)?;
    let mut rounds = 1;
    while has_escape(&bytes) {
        if rounds == DECODE_ROUNDS {
            return Err(PathError::BadEscape);
        }
        bytes = percent_decode(&bytes, false)?;
        rounds += 1;
    }
    if bytes.contains(&0) {
        return Err(PathError::Nul);
    }
    // Overlong and invalid sequences (`%C0%AE` for '.') are what some servers decode loosely:
    // refuse them rather than decide differently from the app behind.
    if std::str::from_utf8(&bytes).is_err() {
        return Err(PathError::NotUtf8);
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing = false;
    for segment in bytes.split(|b| *b == b'/' || *b == b'\\') {
        let segment = match segment.iter().position(|b| *b == b';') {
            Some(i) => &segment[..i],
            None => segment,
        };
        trailing = matches!(segment, b"" | b"." | b"..");
        match segment {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(bytes.len() + 1);
    if segments.is_empty() {
        out.push('/');
    }
    for s in segments {
        out.push('/');
        encode_segment(s, &mut out);
    }
    Ok((out, trailing))
}

/// Write a decoded segment in canonical form: characters that are safe and unambiguous in a
/// path stay as they are, every other byte (`%`, `?`, `#`, spaces, controls, non-ASCII) becomes
/// an upper-case escape. So distinct byte strings stay distinct, and normalising a normalised
/// path changes nothing.
fn encode_segment(segment: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in segment {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn has_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|w| w[0] == b'%' && hex(w[1]).is_some() && hex(w[2]).is_some())
}

fn percent_decode(input: &[u8], strict: bool) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            let pair = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            );
            if let (Some(hi), Some(lo)) = pair {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            if strict {
                return Err(PathError::BadEscape);
            }
        }
        out.push(b);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let ok = [
            ("/", "/"),
            ("//", "/"),
            ("/a/b/", "/a/b"),
            ("/a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/b/..", "/a"),
            ("/%61dmin", "/admin"),
            ("/admin%2Fx", "/admin/x"),
            ("/admin%2fx", "/admin/x"),
            ("/x%5Cadmin", "/x/admin"),
            ("/x\\admin", "/x/admin"),
            ("/admin;jsessionid=1", "/admin"),
            ("/admin;a/b;c", "/admin/b"),
            ("/a/..;/admin", "/admin"),
            ("/a/%2e%2e/admin", "/admin"),
            ("/a/%2E%2E/admin", "/admin"),
            ("/a/%252e%252e/admin", "/admin"),
            ("/a/%25252e%25252e/admin", "/admin"),
            ("/a/.%2e/admin", "/admin"),
            ("/100%25", "/100%25"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/café", "/caf%C3%A9"),
            ("/a%3Fb%23c", "/a%3Fb%23c"),
            ("/a%20b", "/a%20b"),
            ("/a/b/../../c", "/c"),
        ];
        for (input, want) in ok {
            assert_eq!(normalise_path(input).as_deref(), Ok(want), "{input}");
        }
        let bad = [
            ("", PathError::NotAbsolute),
            ("admin", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("/%", PathError::BadEscape),
            ("/100%", PathError::BadEscape),
            ("/%zz", PathError::BadEscape),
            ("/%2", PathError::BadEscape),
            ("/a%00b", PathError::Nul),
            ("/a%2500b", PathError::Nul),
            ("/..", PathError::AboveRoot),
            ("/a%ffb", PathError::NotUtf8),
            ("/x/%C0%AE%C0%AE/admin", PathError::NotUtf8),
            ("/%E9t%E9", PathError::NotUtf8),
            ("/a/../..", PathError::AboveRoot),
            ("/%2e%2e/etc", PathError::AboveRoot),
            ("/a/..%2f..%2fetc", PathError::AboveRoot),
            ("/%2525252525", PathError::BadEscape),
        ];
        for (input, want) in bad {
            assert_eq!(normalise_path(input), Err(want), "{input}");
        }
    }

    #[test]
    fn normalised_paths_are_fixed_points() {
        for input in [
            "/a//b/../c;x",
            "/%2561",
            "/a/%2e/b",
            "/x\\y",
            "/100%25",
            "/caf%C3%A9",
            "/%2541%25",
            "/sp%20ace",
        ] {
            let once = normalise_path(input).expect("normalises");
            assert_eq!(
                normalise_path(&once).as_deref(),
                Ok(once.as_str()),
                "{input}"
            );
        }
    }

    /// The fuzz target's property, over many generated paths: what an upstream receives (raw
    /// when canonical, else the canonical form) normalises to the path the decision used, and
    /// is itself canonical and unambiguous.
    #[test]
    fn forwarded_paths_mean_what_was_decided() {
        const PIECES: &[&str] = &[
            "/", "/", "a", "A", "admin", "pub", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "\\",
            ";", ";x=1", "%3b", "%25", "%252e", "%41", "#", "%23", "?", "%3F", "é", "%C3%A9",
            "%c3%a9", "%20", " ", "~", "{", "%7B", "//", "%00",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut raw = String::from("/");
            for _ in 0..(next() % 8) {
                raw.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let Ok(forms) = classify_path(raw.as_bytes()) else {
                continue;
            };
            let forwarded = if forms.raw_is_canonical {
                raw.as_str()
            } else {
                forms.canonical.as_str()
            };
            let again = classify_path(forwarded.as_bytes()).expect("forwarded form parses");
            assert_eq!(again.matched, forms.matched, "{raw:?}");
            assert!(again.raw_is_canonical && again.unambiguous, "{raw:?}");
            if forms.unambiguous {
                let no_marks = !raw.contains(['#', ';', '\\']);
                let inner: Vec<&str> = raw[1..].split('/').collect();
                let plain_segments = inner.iter().enumerate().all(|(i, seg)| {
                    !matches!(*seg, "." | "..") && (i + 1 == inner.len() || !seg.is_empty())
                });
                assert!(no_marks && plain_segments, "{raw:?}");
            }
        }
    }

    #[test]
    fn path_forms_table() {
        // raw, matched, canonical, raw is canonical, unambiguous
        let cases: &[(&str, &str, &str, bool, bool)] = &[
            ("/", "/", "/", true, true),
            ("/app/page", "/app/page", "/app/page", true, true),
            ("/app/", "/app", "/app/", true, true),
            ("/a%20b", "/a%20b", "/a%20b", true, true),
            ("/caf%C3%A9", "/caf%C3%A9", "/caf%C3%A9", true, true),
            ("/caf%c3%a9", "/caf%C3%A9", "/caf%C3%A9", false, true),
            ("/café", "/caf%C3%A9", "/caf%C3%A9", false, true),
            ("/a%3Fb", "/a%3Fb", "/a%3Fb", true, true),
            ("/100%25", "/100%25", "/100%25", true, true),
            ("/x/{id}", "/x/%7Bid%7D", "/x/%7Bid%7D", false, true),
            ("/a:b@c,d=e+f", "/a:b@c,d=e+f", "/a:b@c,d=e+f", true, true),
            // Structure changes: the upstream gets the canonical form, forward auth refuses.
            ("//app", "/app", "/app", false, false),
            ("/app//", "/app", "/app/", false, false),
            ("/admin/../pub", "/pub", "/pub", false, false),
            ("/admin/..;/pub", "/pub", "/pub", false, false),
            ("/admin/%2e%2e/pub", "/pub", "/pub", false, false),
            ("/admin%2f..%2fpub", "/pub", "/pub", false, false),
            ("/admin\\..\\pub", "/pub", "/pub", false, false),
            ("/owner/%2e%2e/pub", "/pub", "/pub", false, false),
            ("/x/%252e%252e/pub", "/pub", "/pub", false, false),
            ("/a/./b", "/a/b", "/a/b", false, false),
            ("/a/b/.", "/a/b", "/a/b/", false, false),
            ("/a/b/..", "/a", "/a/", false, false),
            ("/admin;jsessionid=1", "/admin", "/admin", false, false),
            ("/admin%3Bx", "/admin", "/admin", false, false),
            ("/%61dmin", "/admin", "/admin", false, false),
            ("/%70ub", "/pub", "/pub", false, false),
            ("/%2541", "/A", "/A", false, false),
            ("/a%2Fb", "/a/b", "/a/b", false, false),
            ("/a%5Cb", "/a/b", "/a/b", false, false),
            ("/admin#x", "/admin%23x", "/admin%23x", false, false),
            ("/admin/x#/../../pub", "/pub", "/pub", false, false),
        ];
        for (raw, matched, canonical, is_canonical, unambiguous) in cases {
            let f = classify_path(raw.as_bytes()).expect(raw);
            assert_eq!(f.matched, *matched, "{raw} matched");
            assert_eq!(f.canonical, *canonical, "{raw} canonical");
            assert_eq!(f.raw_is_canonical, *is_canonical, "{raw} raw is canonical");
            assert_eq!(f.unambiguous, *unambiguous, "{raw} unambiguous");
            // The canonical form means what was decided on, and is its own canonical form.
            assert_eq!(
                normalise_path(&f.canonical).as_deref(),
                Ok(f.matched.as_str())
            );
            let again = classify_path(f.canonical.as_bytes()).expect("canonical");
            assert!(again.raw_is_canonical && again.unambiguous, "{raw}");
        }
        assert_eq!(classify_path(b"/a/../.."), Err(PathError::AboveRoot));
        assert_eq!(classify_path(b"x"), Err(PathError::NotAbsolute));
    }
}
