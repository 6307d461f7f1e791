//! Who may do what: the one authorization rule of the admin API and the console.
//!
//! Every admin handler asks [`Principal::may`] (or one of the helpers built on it) before
//! it reads or writes; none decides on its own. The rule has two parts:
//!
//! 1. **Roles.** Each [`Action`] needs a role in the organization it touches, or the
//!    bootstrap admin ([`RULES`]). An app calling with an access token that holds the
//!    `admin` scope (in the token *and* in the app's live scopes) acts as an
//!    administrator of its own organization. A person who is a *platform
//!    administrator* ([`User::platform_admin`]) may also create organizations and
//!    change any organization (its name, products, sandboxes and status); inside an
//!    organization — its apps, groups, resources, members, audit trail — they have only
//!    the rights of the role they hold there, like anyone else. Only the bootstrap admin
//!    or another platform administrator makes someone a platform administrator, and only
//!    they may reset the password of, or delete, a platform administrator's account.
//! 2. **Nothing is minted above the minter.** An app's credentials (secrets,
//!    certificates, key pairs, API keys, tokens issued for it) carry the app's scopes.
//!    Some scopes are power over Portcullis itself ([`scope_needs`]: `admin` makes an
//!    organization administrator). An app that holds such a scope is changed, and its
//!    credentials made, only by a principal who holds that power already — so a
//!    developer can never become an administrator through an app.
//!
//! The table is written once here and rendered in the README and SECURITY.md; a test
//! keeps the two in step.

use crate::ids::OrgId;
use crate::model::{Role, User};
use crate::scope::ScopeSet;

/// The scope that makes an app an administrator of its organization.
pub const ADMIN_SCOPE: &str = "admin";
/// The scope that lets an app's tokens read its organization's decision data.
pub const VERIFY_SCOPE: &str = "verify";

/// Scopes a token carries only when they are asked for by name (`scope=admin`): a token
/// requested without `scope` gets the app's other scopes. Both are power over Portcullis
/// itself, which a token meant for an API should not carry by accident.
pub const BY_NAME_ONLY: &[&str] = &[ADMIN_SCOPE, VERIFY_SCOPE];

/// The role an organization member needs to give an app `scope`, or to make or hold a
/// credential of an app that has it.
pub fn scope_needs(scope: &str) -> Role {
    if scope == ADMIN_SCOPE {
        Role::Admin
    } else {
        Role::Developer
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The bootstrap admin token: the platform operator.
    Root,
    /// An app calling with one of its access tokens that holds the `admin` scope (checked
    /// against the app's live scopes when the caller is authenticated).
    App { client_id: String, org: OrgId },
    /// A signed-in person, with their roles as stored now.
    User(User),
}

/// What a principal wants to do. The object is the organization passed beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create, change or delete organizations.
    ManageOrgs,
    /// Make a person a platform administrator, or stop them being one.
    ManagePlatformAdmins,
    /// See and rotate the server's signing keys.
    ManageSigningKeys,
    /// See an organization, its apps (and their credentials' metadata), permission
    /// groups, resources, the events stored for its resources, and its members.
    ReadOrg,
    /// Create apps; change, suspend or delete them; add or remove their secrets,
    /// certificates, key pairs, API keys and feeds; issue and revoke their tokens.
    /// Besides the role, the app's scopes must all be ones the principal could grant.
    ManageApps,
    /// Create, change and delete permission groups.
    ManageGroups,
    /// Create, change and delete protected resources.
    ManageResources,
    /// Invite people, give or take roles, reset passwords, delete accounts.
    ManageMembers,
    /// Read the organization's audit trail.
    ReadAudit,
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The bootstrap admin only.
    Root,
    /// The bootstrap admin or a platform administrator.
    Platform,
    /// At least this role in the organization (the bootstrap admin has every role).
    Role(Role),
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub action: Action,
    pub needs: Needs,
    /// What the row covers, for people (the README's table).
    pub covers: &'static str,
}

/// The policy table, in the order the README shows it.
pub const RULES: &[Rule] = &[
    Rule {
        action: Action::ManageOrgs,
        needs: Needs::Platform,
        covers: "create, change, disable or delete organizations (a platform administrator who creates one becomes its administrator)",
    },
    Rule {
        action: Action::ManagePlatformAdmins,
        needs: Needs::Platform,
        covers: "make people platform administrators or stop them being ones; reset the password of, or delete, a platform administrator",
    },
    Rule {
        action: Action::ManageSigningKeys,
        needs: Needs::Root,
        covers: "list and rotate the server's signing keys",
    },
    Rule {
        action: Action::ReadOrg,
        needs: Needs::Role(Role::Developer),
        covers: "see the organization, its apps and their credentials' metadata, groups, resources, stored events, usage counts and members",
    },
    Rule {
        action: Action::ManageApps,
        needs: Needs::Role(Role::Developer),
        covers: "create, change and delete apps; their secrets, certificates, key pairs, API keys and feeds; issue and revoke their tokens (only for apps whose every scope the caller may grant: `admin` needs an administrator)",
    },
    Rule {
        action: Action::ManageGroups,
        needs: Needs::Role(Role::Admin),
        covers: "create, change and delete permission groups",
    },
    Rule {
        action: Action::ManageResources,
        needs: Needs::Role(Role::Admin),
        covers: "create, change and delete protected resources",
    },
    Rule {
        action: Action::ManageMembers,
        needs: Needs::Role(Role::Admin),
        covers: "invite people, give and take roles, reset passwords, delete accounts (of people whose every organization the caller administers)",
    },
    Rule {
        action: Action::ReadAudit,
        needs: Needs::Role(Role::Admin),
        covers: "read the organization's audit trail",
    },
];

/// What `action` needs, from [`RULES`].
pub fn needs(action: Action) -> Needs {
    RULES
        .iter()
        .find(|r| r.action == action)
        .map_or(Needs::Root, |r| r.needs)
}

/// Whether `role` is at least `want` (admin > developer > subscriber).
pub fn at_least(role: Role, want: Role) -> bool {
    rank(role) >= rank(want)
}

fn rank(r: Role) -> u8 {
    match r {
        Role::Admin => 2,
        Role::Developer => 1,
        Role::Subscriber => 0,
    }
}

/// Why a principal may not do something: the scope it lacks the power to hand out, when
/// that is the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The principal's role in the organization is not enough (or it has none).
    Role { needs: Needs },
    /// The app holds a scope only a higher role may grant.
    Scope { scope: String, needs: Role },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Role {
                needs: Needs::Root, ..
            } => f.write_str("only the bootstrap admin may do this"),
            Refusal::Role {
                needs: Needs::Platform,
            } => f.write_str("only the bootstrap admin or a platform administrator may do this"),
            Refusal::Role {
                needs: Needs::Role(r),
            } => write!(
                f,
                "this needs the '{}' role in the organization",
                r.as_str()
            ),
            Refusal::Scope { scope, needs } => write!(
                f,
                "the application holds the '{scope}' scope, which only a member with the '{}' role may grant, so only such a member may change it or make its credentials and tokens",
                needs.as_str()
            ),
        }
    }
}

impl Principal {
    pub fn is_root(&self) -> bool {
        matches!(self, Principal::Root)
    }

    /// The bootstrap admin, or a person who is a platform administrator.
    pub fn is_platform_admin(&self) -> bool {
        match self {
            Principal::Root => true,
            Principal::App { .. } => false,
            Principal::User(u) => u.platform_admin,
        }
    }

    /// This principal's role in `org` (the bootstrap admin is an administrator of every
    /// organization; an admin app of its own).
    pub fn role_in(&self, org: &OrgId) -> Option<Role> {
        match self {
            Principal::Root => Some(Role::Admin),
            Principal::App { org: o, .. } => (o == org).then_some(Role::Admin),
            Principal::User(u) => u.roles.get(org).copied(),
        }
    }

    /// May this principal do `action` in `org`? (Platform actions ignore `org`.)
    pub fn may(&self, action: Action, org: &OrgId) -> Result<(), Refusal> {
        let needs = needs(action);
        let ok = match needs {
            Needs::Root => self.is_root(),
            Needs::Platform => self.is_platform_admin(),
            Needs::Role(want) => self.role_in(org).is_some_and(|r| at_least(r, want)),
        };
        if ok {
            Ok(())
        } else {
            Err(Refusal::Role { needs })
        }
    }

    /// May this principal do a platform-wide action (no organization involved)?
    pub fn may_platform(&self, action: Action) -> Result<(), Refusal> {
        match needs(action) {
            Needs::Root if self.is_root() => Ok(()),
            Needs::Platform if self.is_platform_admin() => Ok(()),
            needs => Err(Refusal::Role { needs }),
        }
    }

    /// May this principal give an app of `org` these scopes, or make or hold a credential
    /// that carries them? The first scope it may not, as the refusal.
    pub fn may_grant(&self, org: &OrgId, scopes: &ScopeSet) -> Result<(), Refusal> {
        let role = self.role_in(org);
        for s in scopes.iter() {
            let want = scope_needs(s.as_str());
            if !role.is_some_and(|r| at_least(r, want)) {
                return Err(Refusal::Scope {
                    scope: s.as_str().to_owned(),
                    needs: want,
                });
            }
        }
        Ok(())
    }

    /// May this principal change an app of `org` whose live scopes are `scopes` (or make
    /// its credentials and tokens)? [`Action::ManageApps`] and [`Principal::may_grant`].
    pub fn may_manage_app(&self, org: &OrgId, scopes: &ScopeSet) -> Result<(), Refusal> {
        self.may(Action::ManageApps, org)?;
        self.may_grant(org, scopes)
    }

    /// May this principal manage `user`'s account (delete it, reset its password)? The
    /// bootstrap admin, or an administrator of *every* organization the user has a role
    /// in — so an administrator of one organization cannot take over a member of another.
    /// A platform administrator's account only the bootstrap admin or another platform
    /// administrator manages, so an organization administrator cannot take over a
    /// platform administrator who is a member of their organization.
    pub fn administers(&self, user: &User) -> bool {
        if user.platform_admin && self.may_platform(Action::ManagePlatformAdmins).is_err() {
            return false;
        }
        self.is_root()
            || (!user.roles.is_empty()
                && user
                    .roles
                    .keys()
                    .all(|o| self.may(Action::ManageMembers, o).is_ok()))
    }

    /// May this principal see `user`? Itself, the bootstrap admin, or an administrator of
    /// one of the user's organizations.
    pub fn sees_user(&self, user: &User) -> bool {
        self.is_root()
            || matches!(self, Principal::User(u) if u.id == user.id)
            || user
                .roles
                .keys()
                .any(|o| self.may(Action::ManageMembers, o).is_ok())
    }

    /// May this principal see the organization record itself (name, status, products,
    /// sandboxes)? Its members, and platform administrators, who may change any.
    pub fn sees_org(&self, org: &OrgId) -> bool {
        self.may(Action::ReadOrg, org).is_ok() || self.may(Action::ManageOrgs, org).is_ok()
    }

    /// The organizations in which this principal may do `action`; `None` means all.
    pub fn orgs_where(&self, action: Action) -> Option<Vec<OrgId>> {
        match self {
            Principal::Root => None,
            Principal::App { org, .. } => Some(
                self.may(action, org)
                    .is_ok()
                    .then(|| org.clone())
                    .into_iter()
                    .collect(),
            ),
            Principal::User(u) => Some(
                u.roles
                    .keys()
                    .filter(|o| self.may(action, o).is_ok())
                    .cloned()
                    .collect(),
            ),
        }
    }

    /// What `portcullis admin create` records as the maker of its links: the operator at
    /// the machine, who can read the data directory and so holds the bootstrap admin's
    /// rights.
    pub const OPERATOR_CLI: &'static str = "cli";

    /// For the audit trail and logs: who, without any secret.
    pub fn describe(&self) -> String {
        match self {
            Principal::Root => "bootstrap-admin".into(),
            Principal::App { client_id, .. } => format!("app:{client_id}"),
            Principal::User(u) => format!("user:{}", u.id),
        }
    }
}

/// The table as the README shows it: one Markdown row per rule.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| action | bootstrap admin | platform admin | org admin (user or `admin` app) | developer | subscriber |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for r in RULES {
        let cell = |role: Role| match r.needs {
            Needs::Root | Needs::Platform => "no",
            Needs::Role(want) if at_least(role, want) => "yes",
            Needs::Role(_) => "no",
        };
        let platform = match r.needs {
            Needs::Root => "no",
            Needs::Platform => "yes",
            Needs::Role(_) => "by their role",
        };
        out.push_str(&format!(
            "| {} | yes | {platform} | {} | {} | {} |\n",
            r.covers,
            cell(Role::Admin),
            cell(Role::Developer),
            cell(Role::Subscriber)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RecordId;
    use std::collections::BTreeMap;

    fn user(roles: &[(&OrgId, Role)]) -> Principal {
        Principal::User(User {
            id: RecordId::generate("usr"),
            email: "a@example.com".into(),
            name: String::new(),
            roles: roles
                .iter()
                .map(|(o, r)| ((*o).clone(), *r))
                .collect::<BTreeMap<_, _>>(),
            platform_admin: false,
            created_at: 0,
        })
    }

    fn platform_admin(roles: &[(&OrgId, Role)]) -> Principal {
        match user(roles) {
            Principal::User(u) => Principal::User(User {
                platform_admin: true,
                ..u
            }),
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_action_has_exactly_one_rule() {
        let all = [
            Action::ManageOrgs,
            Action::ManagePlatformAdmins,
            Action::ManageSigningKeys,
            Action::ReadOrg,
            Action::ManageApps,
            Action::ManageGroups,
            Action::ManageResources,
            Action::ManageMembers,
            Action::ReadAudit,
        ];
        for a in all {
            assert_eq!(RULES.iter().filter(|r| r.action == a).count(), 1, "{a:?}");
        }
        assert_eq!(RULES.len(), all.len());
    }

    #[test]
    fn roles_follow_the_table() {
        let (a, b) = (OrgId::generate(), OrgId::generate());
        let dev = user(&[(&a, Role::Developer)]);
        let admin = user(&[(&a, Role::Admin)]);
        let sub = user(&[(&a, Role::Subscriber)]);
        assert!(dev.may(Action::ManageApps, &a).is_ok());
        assert!(dev.may(Action::ManageMembers, &a).is_err());
        assert!(dev.may(Action::ManageApps, &b).is_err());
        assert!(sub.may(Action::ReadOrg, &a).is_err());
        assert!(admin.may(Action::ReadAudit, &a).is_ok());
        assert!(admin.may(Action::ManageOrgs, &a).is_err());
        assert!(Principal::Root.may(Action::ManageOrgs, &b).is_ok());
        let app = Principal::App {
            client_id: "c".into(),
            org: a.clone(),
        };
        assert!(app.may(Action::ManageMembers, &a).is_ok());
        assert!(app.may(Action::ReadOrg, &b).is_err());
    }

    #[test]
    fn a_developer_cannot_manage_an_app_that_holds_admin() {
        let a = OrgId::generate();
        let dev = user(&[(&a, Role::Developer)]);
        let admin = user(&[(&a, Role::Admin)]);
        let with_admin = ScopeSet::parse("admin read").unwrap();
        let plain = ScopeSet::parse("read write verify").unwrap();
        assert_eq!(
            dev.may_manage_app(&a, &with_admin),
            Err(Refusal::Scope {
                scope: "admin".into(),
                needs: Role::Admin
            })
        );
        assert!(dev.may_manage_app(&a, &plain).is_ok());
        assert!(admin.may_manage_app(&a, &with_admin).is_ok());
    }

    #[test]
    fn administering_a_user_needs_every_one_of_their_orgs() {
        let (a, b) = (OrgId::generate(), OrgId::generate());
        let admin_a = user(&[(&a, Role::Admin)]);
        let Principal::User(member) = user(&[(&a, Role::Developer), (&b, Role::Admin)]) else {
            unreachable!()
        };
        assert!(!admin_a.administers(&member));
        assert!(admin_a.sees_user(&member));
        let Principal::User(only_a) = user(&[(&a, Role::Developer)]) else {
            unreachable!()
        };
        assert!(admin_a.administers(&only_a));
        let Principal::User(nobody) = user(&[]) else {
            unreachable!()
        };
        assert!(!admin_a.administers(&nobody));
        assert!(Principal::Root.administers(&nobody));
    }

    #[test]
    fn a_platform_admin_manages_orgs_but_inside_one_only_by_role() {
        let (a, b) = (OrgId::generate(), OrgId::generate());
        let pa = platform_admin(&[(&a, Role::Developer)]);
        assert!(pa.may_platform(Action::ManageOrgs).is_ok());
        assert!(pa.may(Action::ManageOrgs, &b).is_ok());
        assert!(pa.sees_org(&b));
        assert!(pa.may_platform(Action::ManagePlatformAdmins).is_ok());
        // No rights inside an organization beyond the role held there.
        assert!(pa.may(Action::ReadOrg, &b).is_err());
        assert!(pa.may(Action::ManageApps, &a).is_ok());
        assert!(pa.may(Action::ManageMembers, &a).is_err());
        assert!(pa.may_platform(Action::ManageSigningKeys).is_err());
        assert_eq!(pa.orgs_where(Action::ReadOrg), Some(vec![a.clone()]));
        // An org admin is none of this.
        let admin = user(&[(&a, Role::Admin)]);
        assert!(admin.may_platform(Action::ManageOrgs).is_err());
        assert!(admin.may_platform(Action::ManagePlatformAdmins).is_err());
        assert!(!admin.sees_org(&b));
        let app = Principal::App {
            client_id: "c".into(),
            org: a.clone(),
        };
        assert!(app.may_platform(Action::ManagePlatformAdmins).is_err());
        assert!(
            Principal::Root
                .may_platform(Action::ManagePlatformAdmins)
                .is_ok()
        );
        assert_eq!(
            admin
                .may_platform(Action::ManageOrgs)
                .unwrap_err()
                .to_string(),
            "only the bootstrap admin or a platform administrator may do this"
        );
    }

    #[test]
    fn only_a_platform_admin_manages_a_platform_admins_account() {
        let a = OrgId::generate();
        let admin_a = user(&[(&a, Role::Admin)]);
        let Principal::User(member) = platform_admin(&[(&a, Role::Developer)]) else {
            unreachable!()
        };
        // An org admin sees the member but may not reset their password or delete them.
        assert!(admin_a.sees_user(&member));
        assert!(!admin_a.administers(&member));
        let other_pa = platform_admin(&[(&a, Role::Admin)]);
        assert!(other_pa.administers(&member));
        assert!(Principal::Root.administers(&member));
    }

    #[test]
    fn the_markdown_table_has_a_row_per_rule() {
        let t = markdown_table();
        assert_eq!(t.lines().count(), RULES.len() + 2);
        assert!(t.contains(
            "| read the organization's audit trail | yes | by their role | yes | no | no |"
        ));
        assert!(
            t.contains("| list and rotate the server's signing keys | yes | no | no | no | no |")
        );
    }
}
