//! A Wave publisher's API token, read with an XML parser (shared by `wave.rs` and
//! `console_browser.rs`; not in `common`, which the CLI's tests share without quick-xml).

use super::common::TestApp;

/// A Wave publisher API token for the app (`apitoken.xml`, read with an XML parser).
pub async fn api_token(app: &TestApp, client_id: &str, secret: &str) -> String {
    parse_apitoken(&app.wave_api_token_xml(client_id, secret).await)
}

/// The `apitoken` of an `apitokenResponse`, read with an XML parser, checking the
/// namespace of both elements.
pub fn parse_apitoken(xml: &str) -> String {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let mut r = quick_xml::NsReader::from_str(xml);
    let (mut path, mut token) = (Vec::new(), None);
    loop {
        match r.read_resolved_event().unwrap() {
            (ns, Event::Start(e)) => {
                let ResolveResult::Bound(ns) = ns else {
                    panic!("element without namespace in {xml}")
                };
                assert_eq!(ns.as_ref(), b"urn:com:adobe:service:identity:1.0");
                path.push(String::from_utf8(e.local_name().as_ref().to_vec()).unwrap());
            }
            (_, Event::Text(t)) if path == ["apitokenResponse", "apitoken"] => {
                token = Some(t.decode().unwrap().trim().to_owned());
            }
            (_, Event::End(_)) => {
                path.pop();
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    token.unwrap_or_else(|| panic!("no apitoken in {xml}"))
}
