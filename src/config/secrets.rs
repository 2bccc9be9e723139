//! Secrets: [`Secret`], whose `Debug` never shows the value, and how a secret key is read
//! (its environment variable, then its `*_file` key, then the key itself).

use super::validate::Validator;

/// A secret from the config, a file or the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Validator {
    /// A secret from (in order) the environment variable, the `_file` key, or the inline key.
    pub(super) fn secret(
        &mut self,
        key: &str,
        inline: &str,
        file: &str,
        env: &str,
    ) -> Option<Secret> {
        if let Ok(v) = std::env::var(env) {
            if !v.is_empty() {
                return Some(Secret(v));
            }
        }
        if !file.is_empty() {
            return match std::fs::read_to_string(file) {
                Ok(v) if !v.trim().is_empty() => {
                    Some(Secret(v.trim_end_matches(['\r', '\n']).to_string()))
                }
                Ok(_) => {
                    self.problem(&format!("{key}_file"), format!("{file} is empty"));
                    None
                }
                Err(e) => {
                    self.problem(&format!("{key}_file"), format!("cannot read {file}: {e}"));
                    None
                }
            };
        }
        (!inline.is_empty()).then(|| Secret(inline.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(s)), "Some(Secret(***))");
    }
}
