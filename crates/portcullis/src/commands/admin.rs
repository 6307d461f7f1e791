//! `portcullis admin create`: the first console administrator, on the data directory.
//!
//! The bootstrap admin token is for the admin API; the console is for people, who sign in
//! with an email and a password. This command gives an email the `admin` role in an
//! organization (made if none has that name) and prints a one-time link, the same kind
//! the console's **Invite user** and **Reset password** make: the person opens it, chooses
//! a password and signs in. Only the link's keyed hash is stored.
//!
//! The person is also made a platform administrator (who may create organizations in the
//! console) with `--platform`, or when there is none yet: whoever runs this on the data
//! directory holds the bootstrap admin's rights anyway, and without a platform
//! administrator no one could create an organization from the console.

use super::{Failure, open_data};
use crate::cli::AdminCreateArgs;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::ids::{OrgId, RecordId};
use portcullis_core::model::{
    AuditOutcome, NewAuditEntry, Org, OrgStatus, Role, User, UserLink, UserLinkKind,
};
use portcullis_core::policy::Principal;
use portcullis_core::secret::{Secret, SecretKind};
use portcullis_server::admin::links::LINK_TTL;
use portcullis_server::admin::users::normalise_email;
use portcullis_server::bootstrap;
use portcullis_store::{PageRequest, Store};
use std::collections::{BTreeMap, BTreeSet};

pub async fn create(args: AdminCreateArgs) -> Result<(), Failure> {
    let email = normalise_email(&args.email).map_err(|p| Failure::Config(p.detail))?;
    let (settings, store, master) = open_data(args.layer(), &args.config).await?;
    let hash_key = bootstrap::hash_key(&*store, &master)
        .await
        .map_err(Failure::runtime)?;
    let now = SystemClock.now();
    let (org, made) = find_or_make_org(&*store, &args.org, now).await?;
    let platform = args.platform || !any_platform_admin(&*store).await?;

    let token = Secret::generate(SecretKind::UserLink);
    let existing = store
        .user_by_email(&email)
        .await
        .map_err(Failure::runtime)?;
    let (user, kind) = match existing {
        Some((mut user, _)) => {
            user.roles.insert(org.id.clone(), Role::Admin);
            user.platform_admin |= platform;
            store
                .update_user(&user, None)
                .await
                .map_err(Failure::runtime)?;
            (user, UserLinkKind::Reset)
        }
        None => (
            User {
                id: RecordId::generate("usr"),
                email: email.clone(),
                name: args.name.trim().chars().take(200).collect(),
                roles: BTreeMap::from([(org.id.clone(), Role::Admin)]),
                platform_admin: platform,
                created_at: now,
            },
            UserLinkKind::Invite,
        ),
    };
    let grant = (kind == UserLinkKind::Invite).then(|| (org.id.clone(), Role::Admin));
    let (org_id, role) = grant.unzip();
    let link = UserLink {
        hash: token.hash(&hash_key),
        kind,
        user_id: user.id.clone(),
        org_id,
        role,
        created_by: Principal::OPERATOR_CLI.into(),
        created_at: now,
        expires_at: now + LINK_TTL,
        used_at: None,
    };
    match kind {
        UserLinkKind::Invite => store.invite_user(&user, &link).await,
        UserLinkKind::Reset => store.issue_password_reset(&link).await,
    }
    .map_err(Failure::runtime)?;
    audit(&*store, &user, &org, now).await;

    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let url = format!(
        "{}/console/{}/{}",
        issuer.trim_end_matches('/'),
        kind.as_str(),
        token.expose()
    );
    eprintln!(
        "{} {} is an admin of the organization '{}' ({}){}.",
        if kind == UserLinkKind::Invite {
            "Created"
        } else {
            "Updated"
        },
        user.email,
        org.name,
        org.id,
        if made { ", created just now" } else { "" }
    );
    if user.platform_admin {
        eprintln!(
            "{} is a platform administrator: they may create organizations in the console and change any organization.",
            user.email
        );
    }
    eprintln!(
        "Open this link (it works once, for 24 hours) to choose a password; then sign in at {}/console/:",
        issuer.trim_end_matches('/')
    );
    println!("{url}");
    Ok(())
}

/// Whether any user is a platform administrator already.
async fn any_platform_admin(store: &dyn Store) -> Result<bool, Failure> {
    let mut page = PageRequest {
        after: None,
        limit: 500,
    };
    loop {
        let users = store.users(&page).await.map_err(Failure::runtime)?;
        if users.iter().any(|u| u.platform_admin) {
            return Ok(true);
        }
        match users.last() {
            Some(last) if users.len() == page.limit as usize => {
                page.after = Some(last.id.to_string())
            }
            _ => return Ok(false),
        }
    }
}

/// The org named `wanted` (an id, or a name), or a new one of that name with the sandbox
/// `prod`; and whether it was made now.
async fn find_or_make_org(
    store: &dyn Store,
    wanted: &str,
    now: i64,
) -> Result<(Org, bool), Failure> {
    let wanted = wanted.trim();
    if let Ok(id) = OrgId::parse(wanted) {
        return match store.org(&id).await.map_err(Failure::runtime)? {
            Some(org) => Ok((org, false)),
            None => Err(Failure::Config(format!(
                "there is no organization {id}; give the name of a new one to create it"
            ))),
        };
    }
    if wanted.is_empty() || wanted.chars().count() > 200 || wanted.chars().any(char::is_control) {
        return Err(Failure::Config(
            "--org must be an organization id or a name of 1 to 200 characters".into(),
        ));
    }
    let mut page = PageRequest {
        after: None,
        limit: 500,
    };
    loop {
        let orgs = store.orgs(&page).await.map_err(Failure::runtime)?;
        if let Some(org) = orgs.iter().find(|o| o.name == wanted) {
            return Ok((org.clone(), false));
        }
        match orgs.last() {
            Some(last) if orgs.len() == page.limit as usize => {
                page.after = Some(last.id.to_string())
            }
            _ => break,
        }
    }
    let org = Org {
        id: OrgId::generate(),
        name: wanted.to_owned(),
        status: OrgStatus::Active,
        products: BTreeSet::new(),
        sandboxes: BTreeSet::from(["prod".to_owned()]),
        created_at: now,
        tokens_invalid_before: None,
    };
    store.insert_org(&org).await.map_err(Failure::runtime)?;
    Ok((org, true))
}

async fn audit(store: &dyn Store, user: &User, org: &Org, now: i64) {
    let entry = NewAuditEntry {
        at: now,
        actor: "cli".into(),
        action: "admin.create".into(),
        target: user.id.to_string(),
        outcome: AuditOutcome::Success,
        org_id: Some(org.id.clone()),
        address: None,
        details: serde_json::Map::from_iter([(
            "platform_admin".to_owned(),
            user.platform_admin.into(),
        )]),
    };
    if let Err(e) = store.append_audit(&[entry]).await {
        eprintln!("warning: the audit entry could not be written: {e}");
    }
}
