//! The console's form bodies (`application/x-www-form-urlencoded`), read strictly: a
//! wrong content type is 415, a body over 64 KiB 413, bytes that are not UTF-8 or a
//! repeated single field 400 — each as a console page, never a 5xx.

use super::view::PageError;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

const MAX_FORM: usize = 64 * 1024;

/// The decoded fields of a form, in order.
#[derive(Debug)]
pub struct ConsoleForm {
    fields: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequest<S> for ConsoleForm {
    type Rejection = PageError;

    async fn from_request(req: Request, _: &S) -> Result<Self, PageError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(PageError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Console forms are sent as application/x-www-form-urlencoded.",
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM)
            .await
            .map_err(|_| {
                PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is larger than 64 KiB.",
                )
            })?;
        Self::parse(&bytes)
    }
}

impl ConsoleForm {
    pub fn parse(bytes: &[u8]) -> Result<Self, PageError> {
        let fields: Vec<(String, String)> = form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if fields
            .iter()
            .any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'))
        {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "The form contains bytes that are not UTF-8 text.",
            ));
        }
        Ok(Self { fields })
    }

    /// The one value of `name`; 400 when it is missing or given twice.
    pub fn one(&self, name: &str) -> Result<&str, PageError> {
        let mut it = self.fields.iter().filter(|(k, _)| k == name);
        match (it.next(), it.next()) {
            (Some((_, v)), None) => Ok(v),
            (None, _) => Err(PageError::new(
                StatusCode::BAD_REQUEST,
                format!("The form has no '{name}' field."),
            )),
            _ => Err(PageError::new(
                StatusCode::BAD_REQUEST,
                format!("The form has the field '{name}' more than once."),
            )),
        }
    }

    /// The value of `name` if the form has it (400 when given twice).
    pub fn opt(&self, name: &str) -> Result<Option<&str>, PageError> {
        if self.fields.iter().any(|(k, _)| k == name) {
            self.one(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Every value of a repeatable field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Refuse (400) fields other than `allowed` (and `csrf`, `once`).
    pub fn only(&self, allowed: &[&str]) -> Result<(), PageError> {
        match self
            .fields
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()) && k != "csrf" && k != "once")
        {
            Some((k, _)) => Err(PageError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "The form has an unknown field '{}'.",
                    k.chars().take(40).collect::<String>()
                ),
            )),
            None => Ok(()),
        }
    }
}

impl ConsoleForm {
    /// The field names, in order (with repeats).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(k, _)| k.as_str())
    }
}
