//! An app's other credentials: certificates (uploaded by file picker or dropped onto the
//! form; `multipart/form-data` read by axum's `Multipart`), key pairs (the private key
//! shown once) and API key bundles (a client secret packaged as the API-key redeem flow's JSON file,
//! shown once). All through the admin API's `…/certificates`, `…/keypairs` and
//! `…/api-keys`.

use super::api::{Ignored, seg};
use super::apps::{app_page, app_path, create_once, load_app, shown_once};
use super::common::{Confirm, Page, confirm, download, see_other};
use super::view::{Frame, PageError, alert, copy_field, notice, post_form, respond, time};
use super::{ConsoleForm, Ctx, Signed, fresh_nonce};
use crate::admin::Page as Listing;
use crate::admin::api_keys::ApiKeyBundle;
use crate::admin::apps::AppBody;
use crate::admin::certificates::CertificateBody;
use crate::admin::keypairs::{CreatedKeyPair, KeyPairBody};
use axum::extract::Path;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::StatusCode;
use maud::{Markup, html};
use serde_json::json;

/// The largest certificate file the console takes (a PEM chain is a few KiB).
pub(super) const MAX_CERTIFICATE: usize = 64 * 1024;

/// The app page's section: certificates and key pairs, and the buttons that add them.
pub async fn section(ctx: &Ctx, cid: &str, csrf: &str) -> Result<Markup, PageError> {
    let certs: Listing<CertificateBody> = ctx
        .api()
        .get(&format!("{}/certificates", app_path(cid)))
        .await?;
    let pairs: Listing<KeyPairBody> = ctx
        .api()
        .get(&format!("{}/keypairs", app_path(cid)))
        .await?;
    let (certs, pairs) = (certs.items, pairs.items);
    let here = app_page(cid);
    Ok(html! {
        section aria-labelledby="keys" {
            h2 #keys { "Certificates, key pairs and API keys" }
            p { "Instead of a client secret, an application can prove itself with a JWT signed by its own key: upload the certificate of a key you hold, or let Portcullis generate a key pair." }
            h3 { "Certificates" }
            @if certs.is_empty() {
                div.empty { p { "No certificates. Upload one (PEM, RSA of 2048 bits or more, or EC P-256) to sign JWTs with its private key." } }
            } @else {
                div.scroll { table #certificates {
                    caption.sr { "Certificates" }
                    thead { tr { th scope="col" { "Subject" } th scope="col" { "Key id" } th scope="col" { "Algorithm" } th scope="col" { "Expires" } th scope="col" { span.sr { "Actions" } } } }
                    tbody { @for c in &certs { tr {
                        td { (c.subject) br; small { "SHA-256 " code { (c.fingerprint_sha256.get(..16).unwrap_or("")) "…" } } }
                        td { code { (c.id) } }
                        td { (c.alg) }
                        td { (time(c.not_after)) }
                        td { a href={(here) "/certificates/" (seg(&c.id)) "/delete"} { "Delete" span.sr { " certificate " (c.id) } } }
                    } } }
                } }
            }
            p.actions { a.button href={(here) "/certificates/new"} { "Upload certificate" } }
            h3 { "Key pairs" }
            @if pairs.is_empty() {
                div.empty { p { "No key pairs. Generate one: you get the private key once, Portcullis keeps only the public half." } }
            } @else {
                div.scroll { table #keypairs {
                    caption.sr { "Key pairs" }
                    thead { tr { th scope="col" { "Key id" } th scope="col" { "Algorithm" } th scope="col" { "Created" } th scope="col" { span.sr { "Actions" } } } }
                    tbody { @for k in &pairs { tr {
                        td { code { (k.kid) } }
                        td { (k.alg) }
                        td { (time(k.created_at)) }
                        td { a href={(here) "/keypairs/" (seg(&k.kid)) "/delete"} { "Delete" span.sr { " key pair " (k.kid) } } }
                    } } }
                } }
            }
            (post_form(&format!("{here}/keypairs"), csrf, Some(&fresh_nonce()), html! {
                div.actions {
                    label for="alg" { "Algorithm" }
                    select #alg name="alg" {
                        option value="RS256" selected { "RS256 (RSA 2048)" }
                        option value="ES256" { "ES256 (P-256)" }
                    }
                    button type="submit" { "Generate key pair" }
                }
            }))
            h3 { "API key bundle" }
            p { "A new client secret packaged as a JSON file (" code { "appClientId" } ", " code { "appClientSecret" } ", " code { "encodedKey" } ") for " code { "POST /v1/token" } ". It is listed with the client secrets; deleting that secret ends it." }
            (post_form(&format!("{here}/api-keys"), csrf, Some(&fresh_nonce()), html! {
                p.actions { button type="submit" { "Create API key bundle" } }
            }))
        }
    })
}

fn upload_form(app: &AppBody, csrf: &str, error: Option<&str>) -> Markup {
    let cid = &app.client_id;
    Frame::new("Upload a certificate", Some(csrf))
        .crumb(app_page(cid), &app.name)
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            p { "Upload the X.509 certificate (PEM) of a key that " strong { (app.name) } " signs its JWTs with. Only the certificate: never send a private key (one is refused and not stored)." }
            form.stack method="post" action={(app_page(cid)) "/certificates"} enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(csrf);
                div.drop data-drop-for="certificate" {
                    label for="certificate" { "Certificate file" }
                    input #certificate type="file" name="certificate" accept=".pem,.crt,.cer,application/x-pem-file" required aria-describedby="certificate-help";
                    small #certificate-help { "Choose a " code { ".pem" } " or " code { ".crt" } " file, or drag it onto this box. RSA of 2048 bits or more, or EC P-256; valid now; at most 64 KiB." }
                }
                button.primary type="submit" { "Upload certificate" }
            }
            p { a href=(app_page(cid)) { "Back to the application" } }
        })
}

pub(super) async fn upload_page(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    Ok(respond(StatusCode::OK, upload_form(&app, &csrf, None)))
}

/// The upload's fields: its CSRF token and the file's bytes.
async fn read_upload(mut mp: Multipart) -> Result<(ConsoleForm, Vec<u8>), PageError> {
    let bad = |what: &str| PageError::new(StatusCode::BAD_REQUEST, what.to_owned());
    let mut csrf = None;
    let mut file: Option<Vec<u8>> = None;
    while let Some(mut field) = mp.next_field().await.map_err(|_| {
        bad("The upload is not a well-formed multipart/form-data body; send the form again.")
    })? {
        match field.name() {
            Some("csrf") if csrf.is_none() => {
                csrf = Some(
                    field
                        .text()
                        .await
                        .map_err(|_| bad("The form's security token could not be read."))?,
                );
            }
            Some("certificate") if file.is_none() => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|_| bad("The file could not be read; send the form again."))?
                {
                    if bytes.len() + chunk.len() > MAX_CERTIFICATE {
                        return Err(PageError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "The file is larger than 64 KiB: that is not one certificate. Choose the certificate's PEM file.",
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some(bytes);
            }
            Some(other) => {
                return Err(bad(&format!(
                    "The form has an unexpected or repeated field '{}'.",
                    other.chars().take(40).collect::<String>()
                )));
            }
            None => return Err(bad("The form has a part without a name.")),
        }
    }
    let pairs = csrf.map(|c| ("csrf", c)).into_iter();
    let form = ConsoleForm::parse(
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .as_bytes(),
    )?;
    Ok((form, file.unwrap_or_default()))
}

pub(super) async fn upload(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    mp: Result<Multipart, MultipartRejection>,
) -> Page {
    let mp = mp.map_err(|_| {
        PageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "A certificate is uploaded as multipart/form-data, from the upload form.",
        )
    })?;
    let (form, file) = read_upload(mp).await?;
    ctx.check_csrf(&form)?;
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    let refused = |status: StatusCode, detail: &str| {
        Ok(respond(status, upload_form(&app, &csrf, Some(detail))))
    };
    if file.is_empty() {
        return refused(
            StatusCode::BAD_REQUEST,
            "No file was chosen (or it is empty). Choose the certificate's PEM file.",
        );
    }
    let Ok(pem) = String::from_utf8(file) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The file is not PEM text (it may be DER); convert it with 'openssl x509 -in cert.der -inform der -out cert.pem'.",
        );
    };
    match ctx
        .api()
        .post::<Ignored>(
            &format!("{}/certificates", app_path(&cid)),
            Some(json!({ "pem": pem })),
        )
        .await
    {
        Ok(_) => Ok(see_other(&format!("{}#keys", app_page(&cid)))),
        Err(e) => refused(e.status, &e.detail),
    }
}

/// Text shown once with its copy and download buttons, in a `pre` (PEM, JSON).
fn reveal(id: &str, label: &str, value: &str, file: &str) -> Markup {
    html! {
        div.field {
            span.label id={(id) "-label"} { (label) }
            pre.reveal id=(id) aria-labelledby={(id) "-label"} tabindex="0" { (value) }
            p.actions {
                button.copy type="button" data-copy=(id) { "Copy" }
                (download(file, value))
            }
        }
    }
}

pub(super) async fn generate_key_pair(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    form: ConsoleForm,
) -> Page {
    let alg = |f: &ConsoleForm| Ok(Some(json!({ "alg": f.opt("alg")?.unwrap_or("RS256") })));
    let (created, csrf, here): (CreatedKeyPair, _, _) =
        create_once(&ctx, &cid, &form, &["alg"], "keypairs", alg).await?;
    let kid = &created.key.kid;
    Ok(shown_once(
        "Your new key pair",
        &csrf,
        &here,
        html! {
            (notice("Save the private key now: this is the only time it is shown. Portcullis keeps only the public key."))
            (copy_field("kid", "Key id (the kid of your JWTs' header)", kid))
            dl.facts { dt { "Algorithm" } dd #alg { (created.key.alg) } }
            (reveal("private-key", "Private key (PKCS#8 PEM)", &created.private_key_pem, &format!("{kid}.pem")))
            p.actions { a.button.primary href=(here) { "Done, back to the application" } }
        },
    ))
}

pub(super) async fn api_key_bundle(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    form: ConsoleForm,
) -> Page {
    let (bundle, csrf, here): (ApiKeyBundle, _, _) =
        create_once(&ctx, &cid, &form, &[], "api-keys", |_| Ok(None)).await?;
    let text = serde_json::to_string_pretty(&bundle).unwrap_or_default();
    let file = format!("api-key-{}.json", bundle.app_client_id);
    Ok(shown_once(
        "Your API key bundle",
        &csrf,
        &here,
        html! {
            (notice("Download the bundle now: this is the only time its secret is shown. Portcullis keeps only a keyed hash of it."))
            (reveal("bundle", "API key bundle (JSON)", &text, &file))
            p.actions { a.button.primary href=(here) { "Done, back to the application" } }
        },
    ))
}

/// `certificates` or `keypairs`: what the page calls one, and what deleting it does.
fn kind_of(kind: &str) -> Result<(&'static str, &'static str), PageError> {
    match kind {
        "certificates" => Ok((
            "certificate",
            "JWTs signed with its key are refused from the next request on.",
        )),
        "keypairs" => Ok((
            "key pair",
            "JWTs signed with its private key are refused from the next request on.",
        )),
        _ => Err(PageError::new(
            StatusCode::NOT_FOUND,
            "There is no console page at this address.",
        )),
    }
}

pub(super) async fn delete_key_page(
    Signed(ctx): Signed,
    Path((cid, kind, id)): Path<(String, String, String)>,
) -> Page {
    let (what, effect) = kind_of(&kind)?;
    let csrf = ctx.csrf().unwrap_or_default();
    let here = app_page(&cid);
    let path = format!("{}/{kind}/{}", app_path(&cid), seg(&id));
    ctx.api()
        .get::<Ignored>(&path)
        .await
        .map_err(|e| PageError::from(e).back(&here, "Back to the application"))?;
    let title = format!("Delete {what}?");
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: &title,
        action: format!("{here}/{kind}/{}/delete", seg(&id)),
        back: (here, "Application"),
        text: html! { "Delete the " (what) " " code { (id) } "? " (effect) },
        button: &format!("Delete {what}"),
    }))
}

pub(super) async fn delete_key(
    Signed(ctx): Signed,
    Path((cid, kind, id)): Path<(String, String, String)>,
    form: ConsoleForm,
) -> Page {
    kind_of(&kind)?;
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    let here = app_page(&cid);
    ctx.api()
        .delete(&format!("{}/{kind}/{}", app_path(&cid), seg(&id)))
        .await
        .map_err(|e| PageError::from(e).back(&here, "Back to the application"))?;
    Ok(see_other(&format!("{here}#keys")))
}
