//! A wrongly shaped JSON body, said so a person can fix it: the field (its path), the
//! shape it must have, and an example — instead of serde's own wording ("invalid type:
//! sequence, expected a map at line 1 column 15").
//!
//! serde's messages have a small, stable set of forms (`invalid type: X, expected Y`,
//! `unknown field`, `missing field`, `unknown variant`, …); each is rewritten here, and
//! anything else keeps serde's text behind the field's path.

use serde_path_to_error::{Path, Segment};

/// The detail for a body that is JSON but not of the endpoint's shape.
pub fn describe(path: &Path, error: &serde_json::Error) -> String {
    let message = error.to_string();
    // serde_json appends the position; the path says more.
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => &message,
    };
    let field = field_name(path);
    let top = top_field(path);
    let at = |what: &str| -> String {
        match &field {
            Some(f) => format!("`{f}` {what}"),
            None => format!("The body {what}"),
        }
    };

    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        let shape = shape(expected);
        return with_example(
            format!("{}, not {}.", at(&format!("must be {shape}")), got_as(got)),
            top.as_deref(),
            expected,
        );
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, rest)) = rest.split_once('`')
    {
        let known = names_in(rest);
        // The path ends at the unknown member itself: its place is the path before it.
        let segments: Vec<&Segment> = path.iter().collect();
        let parent = render(&segments[..segments.len().saturating_sub(1)]);
        let place = match parent {
            Some(p) => format!("in `{p}`"),
            None => "in this body".to_owned(),
        };
        let listed = if known.is_empty() {
            "it takes no fields".to_owned()
        } else {
            format!("the fields are {}", known.join(", "))
        };
        return format!("`{name}` is not a field {place}: {listed}. Check the spelling.");
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        let full = match &field {
            Some(f) => format!("{f}.{name}"),
            None => name.to_owned(),
        };
        let top = top.as_deref().unwrap_or(name);
        return with_example(format!("`{full}` is required."), Some(top), "");
    }
    if let Some(rest) = message.strip_prefix("unknown variant `")
        && let Some((value, rest)) = rest.split_once('`')
    {
        let known = names_in(rest);
        return with_example(
            format!(
                "{}, not \"{value}\".",
                at(&format!("must be one of {}", quoted(&known)))
            ),
            top.as_deref(),
            "",
        );
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return with_example(
            format!("{}.", at(&format!("must have {expected}"))),
            top.as_deref(),
            "",
        );
    }
    with_example(
        match &field {
            Some(f) => format!("`{f}`: {message}."),
            None => format!("The body does not match what this endpoint takes: {message}."),
        },
        top.as_deref(),
        "",
    )
}

/// `sandboxes.prod`, `scopes[1]`, or `None` at the top of the body.
fn field_name(path: &Path) -> Option<String> {
    let text = path.to_string();
    (text != "." && !text.is_empty()).then_some(text)
}

/// Segments as serde_path_to_error writes them (`a.b[0]`), `None` for none.
fn render(segments: &[&Segment]) -> Option<String> {
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => out.push('?'),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The body's member the error is under (`sandboxes` for `sandboxes.prod`).
fn top_field(path: &Path) -> Option<String> {
    match path.iter().next() {
        Some(Segment::Map { key }) => Some(key.clone()),
        _ => None,
    }
}

/// serde's "expected" phrase, in JSON's words.
fn shape(expected: &str) -> String {
    let e = expected.trim();
    match e {
        "a map" | "struct" => "an object".to_owned(),
        "a sequence" | "a set" => "an array".to_owned(),
        "a string" | "a borrowed string" | "a character" => "a string".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" | "isize" => {
            "a whole number".to_owned()
        }
        "f32" | "f64" => "a number".to_owned(),
        _ if e.starts_with("struct ") => "an object".to_owned(),
        _ if e.starts_with("a sequence") || e.starts_with("a set") => "an array".to_owned(),
        _ if e.starts_with("a map") => "an object".to_owned(),
        _ if e.starts_with("unit variant") || e.starts_with("variant identifier") => {
            "one of the allowed strings".to_owned()
        }
        _ => e.to_owned(),
    }
}

/// serde's "unexpected" phrase, in JSON's words.
fn got_as(got: &str) -> String {
    match got {
        "sequence" => "an array".to_owned(),
        "map" => "an object".to_owned(),
        "null" => "null".to_owned(),
        g => match g.split_once(' ') {
            Some(("string", v)) => format!("the string {}", v.trim_matches('"')),
            Some(("integer" | "floating point", v)) => {
                format!("the number {}", v.trim_matches('`'))
            }
            Some(("boolean", v)) => v.trim_matches('`').to_owned(),
            _ => g.to_owned(),
        },
    }
}

/// The names in serde's "expected one of `a`, `b`" / "expected `a`".
fn names_in(rest: &str) -> Vec<String> {
    rest.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `detail`, then an example of the member `top` when one is known (chosen by the shape
/// serde expected, where one name has two shapes: an org's `sandboxes` is an array, an
/// app's a map).
fn with_example(detail: String, top: Option<&str>, expected: &str) -> String {
    match top.and_then(|t| example(t, expected)) {
        Some(e) => format!("{detail} For example: {e}"),
        None => detail,
    }
}

fn example(field: &str, expected: &str) -> Option<&'static str> {
    let list = expected.starts_with("a sequence") || expected.starts_with("a set");
    Some(match field {
        "sandboxes" if list => r#""sandboxes": ["prod", "stage"]"#,
        "sandboxes" => r#""sandboxes": {"prod": "read", "stage": "write"}"#,
        "products" => r#""products": ["orders"]"#,
        "scopes" => r#""scopes": ["orders.read", "orders.write"]"#,
        "cors_origins" => r#""cors_origins": ["https://shop.example"]"#,
        "quota" => r#""quota": {"requests": 100, "per": "minute"}"#,
        "roles" => r#""roles": {"<org id>": "developer"}"#,
        "role" => r#""role": "developer""#,
        "status" => r#""status": "active""#,
        "name" => r#""name": "Orders API""#,
        "email" => r#""email": "dev@example.com""#,
        "org_id" => r#""org_id": "4F2A9C1B7D3E5A6B8C0D1E2F@Org""#,
        "group_id" => r#""group_id": "grp_…""#,
        "sandbox" => r#""sandbox": "prod""#,
        "product" => r#""product": "orders""#,
        "token_ttl_seconds" => r#""token_ttl_seconds": 3600"#,
        "allow_unauthenticated" => r#""allow_unauthenticated": false"#,
        "password" => r#""password": "at least 10 characters""#,
        "kind" => r#""kind": "broadcast""#,
        "alg" => r#""alg": "ES256""#,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Access {
        Read,
        Write,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct App {
        name: String,
        #[serde(default)]
        sandboxes: BTreeMap<String, Access>,
        #[serde(default)]
        scopes: Vec<String>,
        token_ttl_seconds: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Org {
        name: String,
        sandboxes: Option<BTreeSet<String>>,
    }

    fn detail<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        let de = &mut serde_json::Deserializer::from_str(body);
        let e = serde_path_to_error::deserialize::<_, T>(de).unwrap_err();
        describe(e.path(), e.inner())
    }

    #[test]
    fn a_list_where_a_map_goes_names_the_field_the_shape_and_an_example() {
        let d = detail::<App>(r#"{"name": "x", "sandboxes": ["prod"]}"#);
        assert_eq!(
            d,
            r#"`sandboxes` must be an object, not an array. For example: "sandboxes": {"prod": "read", "stage": "write"}"#
        );
    }

    #[test]
    fn the_same_name_with_the_other_shape_gets_its_own_example() {
        let d = detail::<Org>(r#"{"name": "x", "sandboxes": {"prod": "read"}}"#);
        assert_eq!(
            d,
            r#"`sandboxes` must be an array, not an object. For example: "sandboxes": ["prod", "stage"]"#
        );
    }

    #[test]
    fn a_wrong_access_level_lists_the_right_ones() {
        let d = detail::<App>(r#"{"name": "x", "sandboxes": {"prod": "rw"}}"#);
        assert!(
            d.starts_with(r#"`sandboxes.prod` must be one of "read", "write", not "rw"."#),
            "{d}"
        );
        assert!(d.contains(r#""sandboxes": {"prod": "read""#), "{d}");
    }

    #[test]
    fn unknown_missing_and_mistyped_fields() {
        let d = detail::<App>(r#"{"name": "x", "scope": ["a"]}"#);
        assert!(d.starts_with("`scope` is not a field in this body: the fields are name, sandboxes, scopes, token_ttl_seconds."), "{d}");
        let d = detail::<App>(r#"{"scopes": []}"#);
        assert_eq!(
            d,
            r#"`name` is required. For example: "name": "Orders API""#
        );
        let d = detail::<App>(r#"{"name": "x", "scopes": "read"}"#);
        assert_eq!(
            d,
            r#"`scopes` must be an array, not the string read. For example: "scopes": ["orders.read", "orders.write"]"#
        );
        let d = detail::<App>(r#"{"name": "x", "token_ttl_seconds": -5}"#);
        assert!(d.starts_with("`token_ttl_seconds`"), "{d}");
        assert!(d.contains("3600"), "{d}");
        assert!(!d.contains("line 1"), "{d}");
    }
}
