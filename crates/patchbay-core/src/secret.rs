//! Redacting secret values.
//!
//! [`Secret`] prints `[redacted]` through `Debug`, `Display` and `Serialize`, so a
//! secret that slips into a log line, an error or an API response leaks nothing.
//! The only ways to the value are [`Secret::expose`] and [`reveal_json`], which
//! a storage backend uses to persist credentials.

use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// The text every redacted value prints as.
pub const REDACTED: &str = "[redacted]";

thread_local! {
    // Serialisation is synchronous, so a thread-local flag scopes revealing to
    // exactly one `reveal_json` call on this thread.
    static REVEAL: Cell<bool> = const { Cell::new(false) };
}

/// A value that never prints itself; zeroised when dropped.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T: Zeroize>(T);

/// The common case: a secret string such as an API key or token.
pub type SecretString = Secret<String>;

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Returns the value; every call site is a place a secret leaves its wrapper.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl Secret<String> {
    /// Whether the secret is the empty string (a form field left blank).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize + Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if REVEAL.with(Cell::get) {
            self.0.serialize(serializer)
        } else {
            serializer.serialize_str(REDACTED)
        }
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

impl<T: Zeroize + schemars::JsonSchema> schemars::JsonSchema for Secret<T> {
    // Inline, so each secret field carries its own `writeOnly` instead of sharing a `$ref`.
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = T::json_schema(generator);
        // UIs render `writeOnly` fields as password inputs and never echo them.
        schema.insert("writeOnly".into(), true.into());
        schema
    }
}

/// JSON that holds revealed secret values; redacts itself when printed.
#[derive(Clone, PartialEq)]
pub struct RevealedJson(serde_json::Value);

impl RevealedJson {
    /// Wraps JSON that is known to contain secret values.
    pub fn new(value: serde_json::Value) -> Self {
        Self(value)
    }

    /// The JSON with secrets in clear; for storage backends only.
    pub fn expose(&self) -> &serde_json::Value {
        &self.0
    }

    /// Consumes the wrapper, returning the JSON with secrets in clear.
    pub fn into_exposed(mut self) -> serde_json::Value {
        std::mem::take(&mut self.0)
    }

    /// Deserialises into a typed secrets struct.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        T::deserialize(&self.0)
    }
}

impl Drop for RevealedJson {
    fn drop(&mut self) {
        zeroize_json(&mut self.0);
    }
}

/// Overwrites every string in a JSON value (keys cannot be reached mutably and
/// never hold secrets).
fn zeroize_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => text.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

impl fmt::Debug for RevealedJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Serialises `value` to JSON with every [`Secret`] inside written in clear.
///
/// This is the one door from a typed secrets struct to storage.
pub fn reveal_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<RevealedJson> {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            REVEAL.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(REVEAL.with(|flag| flag.replace(true)));
    serde_json::to_value(value).map(RevealedJson)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug)]
    struct Keys {
        api_key: SecretString,
        site: String,
    }

    #[test]
    fn every_printing_path_redacts() {
        let keys = Keys {
            api_key: "canary-123".into(),
            site: "datadoghq.com".into(),
        };
        assert_eq!(format!("{}", keys.api_key), REDACTED);
        assert!(!format!("{keys:?}").contains("canary-123"));
        let json = serde_json::to_string(&keys).unwrap();
        assert!(!json.contains("canary-123"), "{json}");
        assert!(json.contains(REDACTED));
    }

    #[test]
    fn reveal_json_writes_values_and_restores_redaction() {
        let keys = Keys {
            api_key: "canary-123".into(),
            site: "us5.datadoghq.com".into(),
        };
        let revealed = reveal_json(&keys).unwrap();
        assert_eq!(revealed.expose()["api_key"], "canary-123");
        assert_eq!(format!("{revealed:?}"), REDACTED);
        assert!(!serde_json::to_string(&keys).unwrap().contains("canary-123"));
        let back: Keys = revealed.deserialize().unwrap();
        assert_eq!(back.api_key.expose(), "canary-123");
    }
}
