//! Words for people: a browser from its User-Agent, a time as "3 minutes ago" or a date.

/// "Chrome on Linux", "Firefox on Android", "curl"; "Unknown browser" when nothing is known.
pub fn browser(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|u| !u.is_empty()) else {
        return "Unknown browser".into();
    };
    let parsed = woothee::parser::Parser::new().parse(ua);
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    match parsed {
        // A browser people use (not a crawler, a library or a tool).
        Some(r)
            if known(r.name)
                && known(r.os)
                && matches!(
                    r.category,
                    "pc" | "smartphone" | "mobilephone" | "appliance"
                ) =>
        {
            format!("{} on {}", r.name, os_name(r.os))
        }
        _ => {
            // A tool such as curl/8.5.0: its name without the version.
            let name: String = ua
                .split(['/', ' '])
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                .take(40)
                .collect();
            if name.is_empty() {
                "Unknown browser".into()
            } else {
                name
            }
        }
    }
}

/// Shorter names for the systems woothee spells out.
fn os_name(os: &str) -> &str {
    match os {
        "Mac OSX" => "macOS",
        "iPhone" | "iPad" | "iPod" => "iOS",
        other => other,
    }
}

/// How long ago `then` was, seen at `now` (both Unix seconds): "just now", "3 minutes ago",
/// "2 hours ago", "yesterday", "5 days ago", or the date for anything older than a month.
pub fn ago(then: i64, now: i64) -> String {
    let secs = now.saturating_sub(then);
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s if s < 2 * 86_400 => "yesterday".into(),
        s if s < 31 * 86_400 => plural(s / 86_400, "day"),
        _ => format!("on {}", date(then)),
    }
}

/// A calendar date in UTC, as "2 Dec 2026".
pub fn date(secs: i64) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// A moment in UTC, as "2 Dec 2026, 14:03 UTC".
pub fn moment(secs: i64) -> String {
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
    );
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// A wait in words: "1 minute", "15 minutes", "2 hours"; never "0 minutes".
pub fn wait(secs: u64) -> String {
    let minutes = secs.div_ceil(60).max(1);
    match minutes {
        1 => "1 minute".into(),
        m if m < 120 => format!("{m} minutes"),
        m => format!("{} hours", m.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named_as_people_know_them() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox on Windows 10",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            ("curl/8.5.0", "curl"),
            ("", "Unknown browser"),
            ("<script>", "script"),
        ];
        for (ua, want) in cases {
            assert_eq!(browser(Some(ua)), want, "{ua}");
        }
        assert_eq!(browser(None), "Unknown browser");
    }

    #[test]
    fn times_read_as_words() {
        let now = 1_764_633_600; // 2 Dec 2025 00:00 UTC
        let cases = [
            (now, "just now"),
            (now - 59, "just now"),
            (now - 60, "1 minute ago"),
            (now - 3 * 60 - 5, "3 minutes ago"),
            (now - 3600, "1 hour ago"),
            (now - 5 * 3600, "5 hours ago"),
            (now - 86_400, "yesterday"),
            (now - 5 * 86_400, "5 days ago"),
            (now - 40 * 86_400, "on 23 Oct 2025"),
            (now + 30, "just now"),
        ];
        for (then, want) in cases {
            assert_eq!(ago(then, now), want, "{then}");
        }
        assert_eq!(moment(now + 14 * 3600 + 3 * 60), "2 Dec 2025, 14:03 UTC");
        assert_eq!(wait(0), "1 minute");
        assert_eq!(wait(61), "2 minutes");
        assert_eq!(wait(900), "15 minutes");
        assert_eq!(wait(3 * 3600), "3 hours");
    }
}
