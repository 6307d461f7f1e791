//! The store's one body: every [`Store`](crate::Store) method whose SQL is the same on
//! SQLite and PostgreSQL, written once.
//!
//! [`implement_store!`] writes a backend's impls of the area traits from these methods plus
//! the ones the backend passes in (the few that differ: the change feed's order and wake-ups, the
//! snapshot's transaction, an organization's cascading delete, the notification insert,
//! backups). The names the bodies use — `record`, `backend`, `hash_col`, `TOUCH_SECRET`,
//! `APPS_IN_GROUP`, the store's `begin`/`doc`/`docs`/`write_one`/`delete_batch` — resolve
//! in the backend's module, which defines each for its database.
//!
//! Placeholders are PostgreSQL's `$1`, `$2`, …: SQLite reads `$NNN` as the NNNth
//! parameter too (sqlx binds it by its number), so one text serves both.

use crate::StoreError;

/// The backend-neutral meaning of a database error both backends report alike: a unique
/// or foreign-key violation is a [`StoreError::Conflict`]; anything else the store being
/// unusable.
pub(crate) fn neutral_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return StoreError::Conflict(d.message().to_owned());
    }
    if let sqlx::Error::Database(d) = &e
        && d.is_foreign_key_violation()
    {
        return StoreError::Conflict("a record it refers to does not exist".to_owned());
    }
    StoreError::Backend(e.to_string())
}

/// The seven area traits of [`Store`](crate::Store) for `$store` over database `$db`, each
/// with the backend's own methods for that area.
macro_rules! implement_store {
    ($store:ident, $db:ident, {
        system: { $($system:tt)* }
        feed: { $($feed:tt)* }
        directory: { $($directory:tt)* }
        user: { $($user:tt)* }
        log: { $($log:tt)* }
        wave: { $($wave:tt)* }
        usage: { $($usage:tt)* }
    }) => {
        #[async_trait]
        impl SystemStore for $store {
            $($system)*

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn setting(&self, name: &str) -> Result<Option<String>> {
                let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(row.map(|r| r.get("value")))
            }

            async fn init_setting(&self, name: &str, value: &str) -> Result<bool> {
                let mut tx = self.begin().await?;
                let n = sqlx::query(
                    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
                if n > 0 {
                    record(&mut tx, Change::Settings).await?;
                }
                tx.commit().await.map_err(backend)?;
                Ok(n > 0)
            }

            async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
                let mut tx = self.begin().await?;
                sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                    .bind(name)
                    .bind(value)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                record(&mut tx, Change::Settings).await?;
                tx.commit().await.map_err(backend)
            }

            async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
                self.docs(sqlx::query("SELECT doc FROM signing_keys ORDER BY kid"))
                    .await
            }

            async fn replace_signing_keys(&self, keys: &[SigningKeyRecord]) -> Result<()> {
                let mut tx = self.begin().await?;
                sqlx::query("DELETE FROM signing_keys")
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                for k in keys {
                    sqlx::query("INSERT INTO signing_keys (kid, doc) VALUES ($1, $2)")
                        .bind(&k.kid)
                        .bind(to_doc(k)?)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                record(&mut tx, Change::SigningKeys).await?;
                tx.commit().await.map_err(backend)
            }
        }

        #[async_trait]
        impl FeedStore for $store {
            $($feed)*

            async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<(i64, Change)>> {
                let rows =
                    sqlx::query("SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
                        .bind(after)
                        .bind(limit as i64)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend)?;
                Ok(rows
                    .into_iter()
                    .filter_map(|r| {
                        let seq: i64 = r.get("seq");
                        Change::from_row(r.get::<&str, _>("kind"), r.get("key")).map(|c| (seq, c))
                    })
                    .collect())
            }

            async fn oldest_change(&self) -> Result<i64> {
                let row = sqlx::query("SELECT COALESCE(MIN(seq), 0) AS seq FROM changes")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(row.get("seq"))
            }

            async fn prune_changes(&self, keep: u32) -> Result<u64> {
                let keep = keep.max(1) as i64;
                let n = sqlx::query("DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - $1")
                    .bind(keep)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                Ok(n)
            }
        }

        #[async_trait]
        impl DirectoryStore for $store {
            $($directory)*

            async fn delete_org(&self, id: &OrgId) -> Result<()> {
                let mut tx = self.begin().await?;
                // Lock the org first, so an app or group inserted into it meanwhile either
                // commits before (and is deleted here) or fails its foreign key after.
                let exists = sqlx::query(LOCK_ORG)
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
                if exists.is_none() {
                    return Err(StoreError::NotFound);
                }
                let apps = org_ids(&mut tx, "SELECT client_id FROM apps WHERE org_id = $1", id).await?;
                let groups = org_ids(
                    &mut tx,
                    "SELECT id FROM permission_groups WHERE org_id = $1",
                    id,
                )
                .await?;
                let resources =
                    org_ids(&mut tx, "SELECT id FROM resources WHERE org_id = $1", id).await?;
                for sql in [
                    "DELETE FROM secrets WHERE client_id IN (SELECT client_id FROM apps WHERE org_id = $1)",
                    "DELETE FROM app_keys WHERE client_id IN (SELECT client_id FROM apps WHERE org_id = $1)",
                    "DELETE FROM apps WHERE org_id = $1",
                    "DELETE FROM resources WHERE org_id = $1",
                    "DELETE FROM permission_groups WHERE org_id = $1",
                ] {
                    sqlx::query(sql)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                let n = sqlx::query("DELETE FROM orgs WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)?;
                for a in apps {
                    record(&mut tx, Change::App(a)).await?;
                }
                for g in groups {
                    record(&mut tx, Change::Group(g)).await?;
                }
                for r in resources {
                    record(&mut tx, Change::Resource(r)).await?;
                }
                record(&mut tx, Change::Org(id.to_string())).await?;
                tx.commit().await.map_err(backend)
            }

            async fn insert_org(&self, org: &Org) -> Result<()> {
                let doc = to_doc(org)?;
                self.write_one(
                    sqlx::query("INSERT INTO orgs (id, doc) VALUES ($1, $2)")
                        .bind(org.id.as_str())
                        .bind(doc),
                    Change::Org(org.id.to_string()),
                )
                .await
            }

            async fn org(&self, id: &OrgId) -> Result<Option<Org>> {
                self.doc(sqlx::query("SELECT doc FROM orgs WHERE id = $1").bind(id.as_str()))
                    .await
            }

            async fn orgs(&self, page: &PageRequest) -> Result<Vec<Org>> {
                self.docs(
                    sqlx::query("SELECT doc FROM orgs WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(page.after.as_deref().unwrap_or(""))
                        .bind(limit(page)),
                )
                .await
            }

            async fn update_org(&self, org: &Org) -> Result<()> {
                let doc = to_doc(org)?;
                self.write_one(
                    sqlx::query("UPDATE orgs SET doc = $1 WHERE id = $2")
                        .bind(doc)
                        .bind(org.id.as_str()),
                    Change::Org(org.id.to_string()),
                )
                .await
            }

            async fn insert_group(&self, group: &Group) -> Result<()> {
                let doc = to_doc(group)?;
                self.write_one(
                    sqlx::query("INSERT INTO permission_groups (id, org_id, doc) VALUES ($1, $2, $3)")
                        .bind(group.id.as_str())
                        .bind(group.org_id.as_str())
                        .bind(doc),
                    Change::Group(group.id.to_string()),
                )
                .await
            }

            async fn group(&self, id: &RecordId) -> Result<Option<Group>> {
                self.doc(sqlx::query("SELECT doc FROM permission_groups WHERE id = $1").bind(id.as_str()))
                    .await
            }

            async fn groups(&self, org: &OrgId, page: &PageRequest) -> Result<Vec<Group>> {
                self.docs(
                    sqlx::query(
                        "SELECT doc FROM permission_groups WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    )
                    .bind(org.as_str())
                    .bind(page.after.as_deref().unwrap_or(""))
                    .bind(limit(page)),
                )
                .await
            }

            async fn update_group(&self, group: &Group) -> Result<()> {
                let doc = to_doc(group)?;
                self.write_one(
                    sqlx::query("UPDATE permission_groups SET doc = $1 WHERE id = $2")
                        .bind(doc)
                        .bind(group.id.as_str()),
                    Change::Group(group.id.to_string()),
                )
                .await
            }

            async fn delete_group(&self, id: &RecordId) -> Result<()> {
                let mut tx = self.begin().await?;
                let in_use: i64 =
                    sqlx::query(APPS_IN_GROUP)
                        .bind(id.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend)?
                        .get("n");
                if in_use > 0 {
                    return Err(StoreError::Conflict(format!(
                        "{in_use} application(s) are in this permission group; move them out first"
                    )));
                }
                let n = sqlx::query("DELETE FROM permission_groups WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)?;
                record(&mut tx, Change::Group(id.to_string())).await?;
                tx.commit().await.map_err(backend)
            }

            async fn insert_resource(&self, resource: &Resource) -> Result<()> {
                let doc = to_doc(resource)?;
                self.write_one(
                    sqlx::query("INSERT INTO resources (id, org_id, doc) VALUES ($1, $2, $3)")
                        .bind(resource.id.as_str())
                        .bind(resource.org_id.as_str())
                        .bind(doc),
                    Change::Resource(resource.id.to_string()),
                )
                .await
            }

            async fn resource(&self, id: &RecordId) -> Result<Option<Resource>> {
                self.doc(sqlx::query("SELECT doc FROM resources WHERE id = $1").bind(id.as_str()))
                    .await
            }

            async fn resources(&self, org: &OrgId, page: &PageRequest) -> Result<Vec<Resource>> {
                self.docs(
                    sqlx::query(
                        "SELECT doc FROM resources WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    )
                    .bind(org.as_str())
                    .bind(page.after.as_deref().unwrap_or(""))
                    .bind(limit(page)),
                )
                .await
            }

            async fn update_resource(&self, resource: &Resource) -> Result<()> {
                let doc = to_doc(resource)?;
                self.write_one(
                    sqlx::query("UPDATE resources SET doc = $1 WHERE id = $2")
                        .bind(doc)
                        .bind(resource.id.as_str()),
                    Change::Resource(resource.id.to_string()),
                )
                .await
            }

            async fn delete_resource(&self, id: &RecordId) -> Result<()> {
                self.write_one(
                    sqlx::query("DELETE FROM resources WHERE id = $1").bind(id.as_str()),
                    Change::Resource(id.to_string()),
                )
                .await
            }

            async fn insert_app(&self, app: &App) -> Result<()> {
                let doc = to_doc(app)?;
                self.write_one(
                    sqlx::query("INSERT INTO apps (client_id, org_id, doc) VALUES ($1, $2, $3)")
                        .bind(app.client_id.as_str())
                        .bind(app.org_id.as_str())
                        .bind(doc),
                    Change::App(app.client_id.to_string()),
                )
                .await
            }

            async fn app(&self, client_id: &ClientId) -> Result<Option<App>> {
                self.doc(sqlx::query("SELECT doc FROM apps WHERE client_id = $1").bind(client_id.as_str()))
                    .await
            }

            async fn apps(&self, org: Option<&OrgId>, page: &PageRequest) -> Result<Vec<App>> {
                let after = page.after.as_deref().unwrap_or("");
                match org {
                    Some(org) => {
                        self.docs(
                            sqlx::query(
                                "SELECT doc FROM apps WHERE org_id = $1 AND client_id > $2 ORDER BY client_id LIMIT $3",
                            )
                            .bind(org.as_str())
                            .bind(after)
                            .bind(limit(page)),
                        )
                        .await
                    }
                    None => {
                        self.docs(
                            sqlx::query(
                                "SELECT doc FROM apps WHERE client_id > $1 ORDER BY client_id LIMIT $2",
                            )
                            .bind(after)
                            .bind(limit(page)),
                        )
                        .await
                    }
                }
            }

            async fn update_app(&self, app: &App) -> Result<()> {
                let doc = to_doc(app)?;
                self.write_one(
                    sqlx::query("UPDATE apps SET doc = $1 WHERE client_id = $2")
                        .bind(doc)
                        .bind(app.client_id.as_str()),
                    Change::App(app.client_id.to_string()),
                )
                .await
            }

            async fn delete_app(&self, client_id: &ClientId) -> Result<()> {
                let mut tx = self.begin().await?;
                for sql in [
                    "DELETE FROM secrets WHERE client_id = $1",
                    "DELETE FROM app_keys WHERE client_id = $1",
                ] {
                    sqlx::query(sql)
                        .bind(client_id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                let n = sqlx::query("DELETE FROM apps WHERE client_id = $1")
                    .bind(client_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)?;
                record(&mut tx, Change::App(client_id.to_string())).await?;
                tx.commit().await.map_err(backend)
            }

            async fn insert_secret(&self, secret: &SecretRecord) -> Result<()> {
                let doc = to_doc(secret)?;
                self.write_one(
                    sqlx::query("INSERT INTO secrets (id, client_id, doc) VALUES ($1, $2, $3)")
                        .bind(secret.id.as_str())
                        .bind(secret.client_id.as_str())
                        .bind(doc),
                    Change::App(secret.client_id.to_string()),
                )
                .await
            }

            async fn secrets(&self, client_id: &ClientId) -> Result<Vec<(SecretRecord, Option<i64>)>> {
                let rows =
                    sqlx::query("SELECT doc, last_used_at FROM secrets WHERE client_id = $1 ORDER BY id")
                        .bind(client_id.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend)?;
                rows.iter()
                    .map(|r| Ok((from_doc(r.get::<&str, _>("doc"))?, r.get("last_used_at"))))
                    .collect()
            }

            async fn update_secret(&self, secret: &SecretRecord) -> Result<()> {
                let doc = to_doc(secret)?;
                self.write_one(
                    sqlx::query("UPDATE secrets SET doc = $1 WHERE id = $2 AND client_id = $3")
                        .bind(doc)
                        .bind(secret.id.as_str())
                        .bind(secret.client_id.as_str()),
                    Change::App(secret.client_id.to_string()),
                )
                .await
            }

            async fn delete_secret(&self, client_id: &ClientId, id: &RecordId) -> Result<()> {
                self.write_one(
                    sqlx::query("DELETE FROM secrets WHERE id = $1 AND client_id = $2")
                        .bind(id.as_str())
                        .bind(client_id.as_str()),
                    Change::App(client_id.to_string()),
                )
                .await
            }

            async fn insert_app_key(&self, key: &AppKey) -> Result<()> {
                let doc = to_doc(key)?;
                self.write_one(
                    sqlx::query("INSERT INTO app_keys (id, client_id, doc) VALUES ($1, $2, $3)")
                        .bind(key.id.as_str())
                        .bind(key.client_id.as_str())
                        .bind(doc),
                    Change::App(key.client_id.to_string()),
                )
                .await
            }

            async fn app_keys(&self, client_id: &ClientId) -> Result<Vec<AppKey>> {
                self.docs(
                    sqlx::query("SELECT doc FROM app_keys WHERE client_id = $1 ORDER BY id")
                        .bind(client_id.as_str()),
                )
                .await
            }

            async fn delete_app_key(&self, client_id: &ClientId, id: &RecordId) -> Result<()> {
                self.write_one(
                    sqlx::query("DELETE FROM app_keys WHERE id = $1 AND client_id = $2")
                        .bind(id.as_str())
                        .bind(client_id.as_str()),
                    Change::App(client_id.to_string()),
                )
                .await
            }

            async fn touch_secrets(&self, used: &[(RecordId, i64)]) -> Result<()> {
                if used.is_empty() {
                    return Ok(());
                }
                // In id order: two nodes flushing overlapping batches lock rows in the same order
                // and cannot deadlock.
                let mut used: Vec<&(RecordId, i64)> = used.iter().collect();
                used.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
                let mut tx = self.begin().await?;
                for (id, at) in used {
                    sqlx::query(
                        TOUCH_SECRET,
                    )
                    .bind(at)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                }
                tx.commit().await.map_err(backend)
            }

            async fn revoke(&self, r: &Revocation) -> Result<()> {
                let mut tx = self.begin().await?;
                let n = sqlx::query(
                    "INSERT INTO revocations (jti, client_id, exp) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
                )
                .bind(&r.jti)
                .bind(r.client_id.as_str())
                .bind(r.exp)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
                if n > 0 {
                    record(&mut tx, Change::Revocation(r.jti.clone())).await?;
                }
                tx.commit().await.map_err(backend)
            }

            async fn revocation(&self, jti: &str) -> Result<Option<Revocation>> {
                let row = sqlx::query("SELECT jti, client_id, exp FROM revocations WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(row.as_ref().and_then(revocation_of))
            }
        }

        #[async_trait]
        impl UserStore for $store {
            $($user)*

            async fn insert_user(&self, user: &User, password_hash: &str) -> Result<()> {
                let doc = to_doc(user)?;
                sqlx::query("INSERT INTO users (id, email, doc, password_hash) VALUES ($1, $2, $3, $4)")
                    .bind(user.id.as_str())
                    .bind(&user.email)
                    .bind(doc)
                    .bind(password_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn user(&self, id: &RecordId) -> Result<Option<User>> {
                self.doc(sqlx::query("SELECT doc FROM users WHERE id = $1").bind(id.as_str()))
                    .await
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>> {
                let row = sqlx::query("SELECT doc, password_hash FROM users WHERE email = $1")
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                row.map(|r| Ok((from_doc(r.get::<&str, _>("doc"))?, r.get("password_hash"))))
                    .transpose()
            }

            async fn users(&self, page: &PageRequest) -> Result<Vec<User>> {
                self.docs(
                    sqlx::query("SELECT doc FROM users WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(page.after.as_deref().unwrap_or(""))
                        .bind(limit(page)),
                )
                .await
            }

            async fn update_user(&self, user: &User, password_hash: Option<&str>) -> Result<()> {
                let doc = to_doc(user)?;
                let n = sqlx::query(
                    "UPDATE users SET email = $1, doc = $2, password_hash = COALESCE($3, password_hash) WHERE id = $4",
                )
                .bind(&user.email)
                .bind(doc)
                .bind(password_hash)
                .bind(user.id.as_str())
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
                expect_one(n)
            }

            async fn delete_user(&self, id: &RecordId) -> Result<()> {
                let n = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)
            }

            async fn insert_session(&self, hash: &str, user: &RecordId, expires_at: i64) -> Result<()> {
                sqlx::query("INSERT INTO sessions (hash, user_id, expires_at) VALUES ($1, $2, $3)")
                    .bind(hash)
                    .bind(user.as_str())
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn session(&self, hash: &str, now: i64) -> Result<Option<RecordId>> {
                let row = sqlx::query("SELECT user_id FROM sessions WHERE hash = $1 AND expires_at > $2")
                    .bind(hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(row.and_then(|r| RecordId::parse(r.get::<&str, _>("user_id")).ok()))
            }

            async fn delete_session(&self, hash: &str) -> Result<()> {
                sqlx::query("DELETE FROM sessions WHERE hash = $1")
                    .bind(hash)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn invite_user(&self, user: &User, link: &UserLink) -> Result<()> {
                let doc = to_doc(user)?;
                let mut tx = self.begin().await?;
                sqlx::query("INSERT INTO users (id, email, doc, password_hash) VALUES ($1, $2, $3, $4)")
                    .bind(user.id.as_str())
                    .bind(&user.email)
                    .bind(doc)
                    .bind(crate::NO_PASSWORD)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                insert_user_link(&mut tx, link).await?;
                tx.commit().await.map_err(backend)
            }

            async fn issue_password_reset(&self, link: &UserLink) -> Result<()> {
                let mut tx = self.begin().await?;
                let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(crate::NO_PASSWORD)
                    .bind(link.user_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)?;
                for sql in [
                    "DELETE FROM sessions WHERE user_id = $1",
                    "DELETE FROM user_links WHERE user_id = $1 AND used_at IS NULL",
                ] {
                    sqlx::query(sql)
                        .bind(link.user_id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                insert_user_link(&mut tx, link).await?;
                tx.commit().await.map_err(backend)
            }

            async fn user_link(&self, hash: &SecretHash) -> Result<Option<UserLink>> {
                let row = sqlx::query("SELECT * FROM user_links WHERE hash = $1")
                    .bind(hash.to_hex())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                row.as_ref().map(user_link_row).transpose()
            }

            async fn use_user_link(
                &self,
                hash: &SecretHash,
                now: i64,
                password_hash: &str,
            ) -> Result<Option<UserLink>> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(
                    "UPDATE user_links SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $3 RETURNING *",
                )
                .bind(now)
                .bind(hash.to_hex())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
                let Some(link) = row.as_ref().map(user_link_row).transpose()? else {
                    return Ok(None);
                };
                let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(link.user_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(link.user_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                Ok(Some(link))
            }
        }

        #[async_trait]
        impl LogStore for $store {
            $($log)*

            async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>> {
                if events.is_empty() {
                    return Ok(Vec::new());
                }
                // One transaction: a failure part-way (a resource deleted meanwhile) rolls every
                // row back when `tx` is dropped uncommitted.
                let mut tx = self.begin().await?;
                let mut ids = Vec::with_capacity(events.len());
                for e in events {
                    let row = sqlx::query(
                        "INSERT INTO events (resource_id, received_at, authenticated, client_id, event) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    )
                    .bind(e.resource_id.as_str())
                    .bind(e.received_at)
                    .bind(e.authenticated)
                    .bind(e.client_id.as_ref().map(ClientId::as_str))
                    .bind(to_doc(&e.event)?)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
                    ids.push(row.get::<i64, _>("id"));
                }
                tx.commit().await.map_err(backend)?;
                Ok(ids)
            }

            async fn events(&self, resource: &RecordId, page: &PageRequest) -> Result<Vec<StoredEvent>> {
                let after = match page.after.as_deref() {
                    None => 0,
                    Some(a) => a.parse::<i64>().map_err(|_| StoreError::NotFound)?,
                };
                let rows = sqlx::query(
                    "SELECT id, resource_id, received_at, authenticated, client_id, event FROM events \
                     WHERE resource_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(resource.as_str())
                .bind(after)
                .bind(limit(page))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
                rows.iter()
                    .map(|r| {
                        let bad = |what: &str| StoreError::Backend(format!("decoding an event: {what}"));
                        Ok(StoredEvent {
                            id: r.get("id"),
                            event: NewEvent {
                                resource_id: RecordId::parse(r.get::<&str, _>("resource_id"))
                                    .map_err(|e| bad(&e.0))?,
                                received_at: r.get("received_at"),
                                authenticated: r.get("authenticated"),
                                client_id: r
                                    .get::<Option<&str>, _>("client_id")
                                    .map(ClientId::parse)
                                    .transpose()
                                    .map_err(|e| bad(&e.0))?,
                                event: from_doc(r.get::<&str, _>("event"))?,
                            },
                        })
                    })
                    .collect()
            }

            async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<Vec<i64>> {
                if entries.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.begin().await?;
                let mut ids = Vec::with_capacity(entries.len());
                // Chunks keep each statement under the backends' parameter limits (8 a row).
                for chunk in entries.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(audit_sql::INSERT);
                    audit_sql::push_values(&mut q, chunk)?;
                    let rows = q.build().fetch_all(&mut *tx).await.map_err(backend)?;
                    let mut chunk_ids: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
                    chunk_ids.sort_unstable();
                    ids.extend(chunk_ids);
                }
                tx.commit().await.map_err(backend)?;
                Ok(ids)
            }

            async fn audit(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Vec<AuditEntry>> {
                let mut q = audit_sql::select::<$db>(filter, page)?;
                let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
                rows.iter().map(audit_sql::entry).collect()
            }
        }

        #[async_trait]
        impl WaveStore for $store {
            $($wave)*

            async fn insert_notification(&self, n: &NewNotification) -> Result<(i64, Vec<RecordId>)> {
                let mut tx = self.begin().await?;
                before_notification(&mut tx).await?;
                let id: i64 = sqlx::query(
                    "INSERT INTO notifications (feed_id, created_at, doc) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(n.feed_id.as_str())
                .bind(n.created_at)
                .bind(to_doc(n)?)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?
                .get("id");
                let rows = match &n.to_user {
                    Some(user) => sqlx::query(
                        "INSERT INTO inbox (user_id, notification_id) VALUES ($1, $2) RETURNING user_id",
                    )
                    .bind(user.as_str())
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend)?,
                    None => sqlx::query(
                        "INSERT INTO inbox (user_id, notification_id) \
                         SELECT user_id, $1 FROM subscriptions WHERE feed_id = $2 RETURNING user_id",
                    )
                    .bind(id)
                    .bind(n.feed_id.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend)?,
                };
                let recipients = rows
                    .iter()
                    .map(|r| id_col(r, "user_id"))
                    .collect::<Result<Vec<_>>>()?;
                after_notification(&mut tx, id).await?;
                tx.commit().await.map_err(backend)?;
                Ok((id, recipients))
            }

            async fn insert_feed(&self, feed: &Feed) -> Result<()> {
                sqlx::query("INSERT INTO feeds (id, client_id, doc) VALUES ($1, $2, $3)")
                    .bind(feed.id.as_str())
                    .bind(feed.client_id.as_str())
                    .bind(to_doc(feed)?)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn feed(&self, id: &RecordId) -> Result<Option<Feed>> {
                self.doc(sqlx::query("SELECT doc FROM feeds WHERE id = $1").bind(id.as_str()))
                    .await
            }

            async fn feeds(&self, client_id: &ClientId, page: &PageRequest) -> Result<Vec<Feed>> {
                self.docs(
                    sqlx::query(
                        "SELECT doc FROM feeds WHERE client_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    )
                    .bind(client_id.as_str())
                    .bind(page.after.as_deref().unwrap_or(""))
                    .bind(limit(page)),
                )
                .await
            }

            async fn update_feed(&self, feed: &Feed) -> Result<()> {
                let n = sqlx::query("UPDATE feeds SET doc = $1 WHERE id = $2")
                    .bind(to_doc(feed)?)
                    .bind(feed.id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)
            }

            async fn delete_feed(&self, id: &RecordId) -> Result<()> {
                let n = sqlx::query("DELETE FROM feeds WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)
            }

            async fn insert_topic(&self, topic: &Topic) -> Result<()> {
                sqlx::query("INSERT INTO topics (id, feed_id, uri, doc) VALUES ($1, $2, $3, $4)")
                    .bind(topic.id.as_str())
                    .bind(topic.feed_id.as_str())
                    .bind(&topic.uri)
                    .bind(to_doc(topic)?)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn topic(&self, id: &RecordId) -> Result<Option<Topic>> {
                self.doc(sqlx::query("SELECT doc FROM topics WHERE id = $1").bind(id.as_str()))
                    .await
            }

            async fn topic_by_uri(&self, uri: &str) -> Result<Option<Topic>> {
                self.doc(sqlx::query("SELECT doc FROM topics WHERE uri = $1").bind(uri))
                    .await
            }

            async fn topics(&self, feed: &RecordId, page: &PageRequest) -> Result<Vec<Topic>> {
                self.docs(
                    sqlx::query(
                        "SELECT doc FROM topics WHERE feed_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    )
                    .bind(feed.as_str())
                    .bind(page.after.as_deref().unwrap_or(""))
                    .bind(limit(page)),
                )
                .await
            }

            async fn update_topic(&self, topic: &Topic) -> Result<()> {
                let n = sqlx::query("UPDATE topics SET doc = $1 WHERE id = $2")
                    .bind(to_doc(topic)?)
                    .bind(topic.id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)
            }

            async fn delete_topic(&self, id: &RecordId) -> Result<()> {
                let n = sqlx::query("DELETE FROM topics WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)
            }

            async fn remember_nonce(
                &self,
                client: &ClientId,
                nonce: &str,
                timestamp: i64,
                forget_before: i64,
            ) -> Result<bool> {
                let mut tx = self.begin().await?;
                sqlx::query("DELETE FROM oauth1_nonces WHERE timestamp < $1")
                    .bind(forget_before)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                let n = sqlx::query(
                    "INSERT INTO oauth1_nonces (client_id, nonce, timestamp) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(client.as_str())
                .bind(nonce)
                .bind(timestamp)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
                tx.commit().await.map_err(backend)?;
                Ok(n == 1)
            }

            async fn insert_request_token(&self, t: &RequestToken) -> Result<()> {
                sqlx::query(
                    "INSERT INTO oauth1_request_tokens (hash, secret_hash, client_id, expires_at, user_id, feed_id) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(t.hash.to_hex())
                .bind(t.secret_hash.to_hex())
                .bind(t.client_id.as_str())
                .bind(t.expires_at)
                .bind(t.authorized.as_ref().map(|a| a.user_id.as_str()))
                .bind(t.authorized.as_ref().map(|a| a.feed_id.as_str()))
                .execute(&self.pool)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn request_token(&self, hash: &SecretHash, now: i64) -> Result<Option<RequestToken>> {
                let row =
                    sqlx::query("SELECT * FROM oauth1_request_tokens WHERE hash = $1 AND expires_at > $2")
                        .bind(hash.to_hex())
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(backend)?;
                row.as_ref().map(request_token_row).transpose()
            }

            async fn authorize_request_token(
                &self,
                hash: &SecretHash,
                user: &RecordId,
                feed: &RecordId,
                now: i64,
            ) -> Result<()> {
                let n = sqlx::query(
                    "UPDATE oauth1_request_tokens SET user_id = $1, feed_id = $2 \
                     WHERE hash = $3 AND expires_at > $4 AND user_id IS NULL",
                )
                .bind(user.as_str())
                .bind(feed.as_str())
                .bind(hash.to_hex())
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
                expect_one(n)
            }

            async fn consume_request_token(
                &self,
                hash: &SecretHash,
                now: i64,
            ) -> Result<Option<RequestToken>> {
                let row = sqlx::query(
                    "DELETE FROM oauth1_request_tokens \
                     WHERE hash = $1 AND expires_at > $2 AND user_id IS NOT NULL RETURNING *",
                )
                .bind(hash.to_hex())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                row.as_ref().map(request_token_row).transpose()
            }

            async fn insert_link_token(&self, t: &LinkToken) -> Result<()> {
                sqlx::query(
                    "INSERT INTO oauth1_access_tokens (hash, secret_hash, client_id, feed_id, user_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(t.hash.to_hex())
                .bind(t.secret_hash.to_hex())
                .bind(t.client_id.as_str())
                .bind(t.feed_id.as_str())
                .bind(t.user_id.as_str())
                .bind(t.created_at)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn link_token(&self, hash: &SecretHash) -> Result<Option<LinkToken>> {
                let row = sqlx::query("SELECT * FROM oauth1_access_tokens WHERE hash = $1")
                    .bind(hash.to_hex())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                row.map(|r| {
                    Ok(LinkToken {
                        hash: hash_col(&r, "hash")?,
                        secret_hash: hash_col(&r, "secret_hash")?,
                        client_id: client_col(&r)?,
                        feed_id: id_col(&r, "feed_id")?,
                        user_id: id_col(&r, "user_id")?,
                        created_at: r.get("created_at"),
                    })
                })
                .transpose()
            }

            async fn insert_api_token(
                &self,
                hash: &SecretHash,
                client: &ClientId,
                secret: Option<&RecordId>,
                expires_at: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO wave_api_tokens (hash, client_id, expires_at, secret_id) VALUES ($1, $2, $3, $4)",
                )
                .bind(hash.to_hex())
                .bind(client.as_str())
                .bind(expires_at)
                .bind(secret.map(RecordId::as_str))
                .execute(&self.pool)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn api_token(
                &self,
                hash: &SecretHash,
                now: i64,
            ) -> Result<Option<(ClientId, i64, Option<RecordId>)>> {
                let row = sqlx::query(
                    "SELECT client_id, expires_at, secret_id FROM wave_api_tokens WHERE hash = $1 AND expires_at > $2",
                )
                .bind(hash.to_hex())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                row.as_ref()
                    .map(|r| {
                        let secret = r
                            .get::<Option<&str>, _>("secret_id")
                            .map(|s| RecordId::parse(s))
                            .transpose()
                            .map_err(|e| StoreError::Backend(format!("decoding secret_id: {}", e.0)))?;
                        Ok((client_col(r)?, r.get::<i64, _>("expires_at"), secret))
                    })
                    .transpose()
            }

            async fn subscribe(&self, user: &RecordId, feed: &RecordId, now: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO subscriptions (user_id, feed_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(user.as_str())
                .bind(feed.as_str())
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn unsubscribe(&self, user: &RecordId, feed: &RecordId) -> Result<()> {
                let n = sqlx::query("DELETE FROM subscriptions WHERE user_id = $1 AND feed_id = $2")
                    .bind(user.as_str())
                    .bind(feed.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)
            }

            async fn subscriptions(&self, user: &RecordId) -> Result<Vec<RecordId>> {
                let rows =
                    sqlx::query("SELECT feed_id FROM subscriptions WHERE user_id = $1 ORDER BY feed_id")
                        .bind(user.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend)?;
                rows.iter().map(|r| id_col(r, "feed_id")).collect()
            }

            async fn inbox(
                &self,
                user: &RecordId,
                after: i64,
                limit: u32,
            ) -> Result<Vec<StoredNotification>> {
                let rows = sqlx::query(
                    "SELECT n.id AS id, n.doc AS doc FROM inbox i JOIN notifications n ON n.id = i.notification_id \
                     WHERE i.user_id = $1 AND i.notification_id > $2 ORDER BY i.notification_id LIMIT $3",
                )
                .bind(user.as_str())
                .bind(after)
                .bind(limit.clamp(1, 1000) as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
                rows.iter()
                    .map(|r| {
                        Ok(StoredNotification {
                            id: r.get("id"),
                            notification: from_doc(r.get::<&str, _>("doc"))?,
                        })
                    })
                    .collect()
            }

            async fn notifications_since(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<(StoredNotification, Vec<RecordId>)>> {
                let rows =
                    sqlx::query("SELECT id, doc FROM notifications WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after)
                        .bind(limit.clamp(1, 1000) as i64)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend)?;
                let mut out = rows
                    .iter()
                    .map(|r| {
                        Ok((
                            StoredNotification {
                                id: r.get("id"),
                                notification: from_doc(r.get::<&str, _>("doc"))?,
                            },
                            Vec::new(),
                        ))
                    })
                    .collect::<Result<Vec<(StoredNotification, Vec<RecordId>)>>>()?;
                let Some(last) = out.last().map(|(n, _)| n.id) else {
                    return Ok(out);
                };
                let recipients = sqlx::query(
                    "SELECT notification_id, user_id FROM inbox \
                     WHERE notification_id > $1 AND notification_id <= $2 ORDER BY notification_id",
                )
                .bind(after)
                .bind(last)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
                let mut at = 0;
                for r in &recipients {
                    let id: i64 = r.get("notification_id");
                    while at < out.len() && out[at].0.id < id {
                        at += 1;
                    }
                    if at < out.len() && out[at].0.id == id {
                        out[at].1.push(id_col(r, "user_id")?);
                    }
                }
                Ok(out)
            }

            async fn last_notification_id(&self) -> Result<i64> {
                let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM notifications")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(row.get("id"))
            }

            async fn prune_notifications(&self, before: i64, limit: u32) -> Result<u64> {
                self.delete_batch(
                    "DELETE FROM notifications WHERE id IN \
                     (SELECT id FROM notifications WHERE created_at < $1 ORDER BY id LIMIT $2)",
                    before,
                    limit,
                )
                .await
            }

            async fn prune_request_tokens(&self, now: i64, limit: u32) -> Result<u64> {
                self.delete_batch(
                    "DELETE FROM oauth1_request_tokens WHERE hash IN \
                     (SELECT hash FROM oauth1_request_tokens WHERE expires_at <= $1 LIMIT $2)",
                    now,
                    limit,
                )
                .await
            }

            async fn prune_api_tokens(&self, now: i64, limit: u32) -> Result<u64> {
                self.delete_batch(
                    "DELETE FROM wave_api_tokens WHERE hash IN \
                     (SELECT hash FROM wave_api_tokens WHERE expires_at <= $1 LIMIT $2)",
                    now,
                    limit,
                )
                .await
            }

            async fn delete_request_token(&self, hash: &SecretHash) -> Result<()> {
                let n = sqlx::query("DELETE FROM oauth1_request_tokens WHERE hash = $1")
                    .bind(hash.to_hex())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                expect_one(n)
            }
        }

        #[async_trait]
        impl UsageStore for $store {
            $($usage)*

            async fn add_usage(&self, counts: &[(portcullis_core::usage::UsageKey, u64)]) -> Result<()> {
                if counts.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin().await?;
                for (sql, resolution) in [
                    (USAGE_ADD_MINUTES, crate::UsageResolution::Minute),
                    (USAGE_ADD_HOURS, crate::UsageResolution::Hour),
                ] {
                    // One table's rows at a time: a flush of many keys holds one copy.
                    let rows = crate::usage_rows(counts, resolution);
                    for chunk in rows.chunks(USAGE_ROWS) {
                        let mut q = sqlx::QueryBuilder::<$db>::new(sql.0);
                        q.push_values(chunk, |mut b, ((at, org, app, subject, subject_id, outcome), n)| {
                            b.push_bind(*at)
                                .push_bind(*org)
                                .push_bind(*app)
                                .push_bind(*subject)
                                .push_bind(*subject_id)
                                .push_bind(*outcome)
                                .push_bind(*n);
                        });
                        q.push(sql.1);
                        q.build().execute(&mut *tx).await.map_err(backend)?;
                    }
                }
                tx.commit().await.map_err(backend)
            }

            async fn usage(
                &self,
                filter: &crate::UsageFilter,
                from: i64,
                to: i64,
                step: i64,
            ) -> Result<Vec<crate::UsageBucket>> {
                let hourly = crate::UsageResolution::for_step(step) == crate::UsageResolution::Hour;
                let (sql, id) = match (filter, hourly) {
                    (crate::UsageFilter::Org(o), false) => (USAGE_OF_ORG_BY_MINUTE, o.as_str()),
                    (crate::UsageFilter::App(a), false) => (USAGE_OF_APP_BY_MINUTE, a.as_str()),
                    (crate::UsageFilter::Org(o), true) => (USAGE_OF_ORG_BY_HOUR, o.as_str()),
                    (crate::UsageFilter::App(a), true) => (USAGE_OF_APP_BY_HOUR, a.as_str()),
                };
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .bind(step.max(60))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend)?;
                rows.iter()
                    .map(|r| {
                        Ok(crate::UsageBucket {
                            at: r.get("at"),
                            subject: crate::usage_subject(r.get("subject"), r.get("subject_id"))?,
                            outcome: r.get("outcome"),
                            count: r.get::<i64, _>("n").max(0) as u64,
                        })
                    })
                    .collect()
            }

            async fn usage_by_app(
                &self,
                org: &portcullis_core::ids::OrgId,
                from: i64,
                to: i64,
                resolution: crate::UsageResolution,
            ) -> Result<Vec<crate::UsageAppCount>> {
                let sql = match resolution {
                    crate::UsageResolution::Minute => USAGE_BY_APP_BY_MINUTE,
                    crate::UsageResolution::Hour => USAGE_BY_APP_BY_HOUR,
                };
                let rows = sqlx::query(sql)
                    .bind(org.as_str())
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend)?;
                Ok(rows
                    .iter()
                    .map(|r| crate::UsageAppCount {
                        client_id: Some(r.get::<String, _>("client_id")).filter(|c| !c.is_empty()),
                        outcome: r.get("outcome"),
                        count: r.get::<i64, _>("n").max(0) as u64,
                    })
                    .collect())
            }

            async fn prune_usage(
                &self,
                resolution: crate::UsageResolution,
                before: i64,
                limit: u32,
            ) -> Result<u64> {
                let sql = match resolution {
                    crate::UsageResolution::Minute => USAGE_PRUNE_MINUTES,
                    crate::UsageResolution::Hour => USAGE_PRUNE_HOURS,
                };
                self.delete_batch(sql, before, limit).await
            }
        }
    };
}

pub(crate) use implement_store;

/// Rows per multi-row `INSERT` of [`UsageStore::add_usage`](crate::UsageStore::add_usage):
/// 7 parameters each, well below both backends' limits.
pub(crate) const USAGE_ROWS: usize = 500;

/// The multi-row upsert of [`UsageStore::add_usage`](crate::UsageStore::add_usage) into
/// the table of `$table` with its time column `$at`: the statement before the values, and
/// the clause after them.
macro_rules! usage_add {
    ($table:literal, $at:literal) => {
        (
            concat!(
                "INSERT INTO ",
                $table,
                " (",
                $at,
                ", org_id, client_id, subject, subject_id, outcome, count) "
            ),
            concat!(
                " ON CONFLICT (",
                $at,
                ", org_id, client_id, subject, subject_id, outcome) \
                 DO UPDATE SET count = ",
                $table,
                ".count + excluded.count"
            ),
        )
    };
}
pub(crate) const USAGE_ADD_MINUTES: (&str, &str) = usage_add!("usage_minute", "minute");
pub(crate) const USAGE_ADD_HOURS: (&str, &str) = usage_add!("usage_hour", "hour");

/// The sums of [`UsageStore::usage`](crate::UsageStore::usage) for `$1` (an org or a client
/// id, by the column named), from `$2` to `$3` in buckets of `$4` seconds, from the table
/// `$table` with its time column `$at`. `SUM` is cast: PostgreSQL's sum of `BIGINT`s is
/// `NUMERIC`.
macro_rules! usage_sums {
    ($column:literal, $table:literal, $at:literal) => {
        concat!(
            "SELECT (",
            $at,
            " / $4) * $4 AS at, subject, subject_id, outcome, \
             CAST(SUM(count) AS BIGINT) AS n FROM ",
            $table,
            " WHERE ",
            $column,
            " = $1 AND ",
            $at,
            " >= $2 AND ",
            $at,
            " < $3 \
             GROUP BY 1, 2, 3, 4 ORDER BY 2, 3, 4, 1"
        )
    };
}
pub(crate) const USAGE_OF_ORG_BY_MINUTE: &str = usage_sums!("org_id", "usage_minute", "minute");
pub(crate) const USAGE_OF_APP_BY_MINUTE: &str = usage_sums!("client_id", "usage_minute", "minute");
pub(crate) const USAGE_OF_ORG_BY_HOUR: &str = usage_sums!("org_id", "usage_hour", "hour");
pub(crate) const USAGE_OF_APP_BY_HOUR: &str = usage_sums!("client_id", "usage_hour", "hour");

/// The sums of [`UsageStore::usage_by_app`](crate::UsageStore::usage_by_app): org `$1`,
/// from `$2` to `$3`.
macro_rules! usage_by_app {
    ($table:literal, $at:literal) => {
        concat!(
            "SELECT client_id, outcome, CAST(SUM(count) AS BIGINT) AS n FROM ",
            $table,
            " WHERE org_id = $1 AND ",
            $at,
            " >= $2 AND ",
            $at,
            " < $3 \
             GROUP BY 1, 2 ORDER BY 1, 2"
        )
    };
}
pub(crate) const USAGE_BY_APP_BY_MINUTE: &str = usage_by_app!("usage_minute", "minute");
pub(crate) const USAGE_BY_APP_BY_HOUR: &str = usage_by_app!("usage_hour", "hour");

/// One batch of [`UsageStore::prune_usage`](crate::UsageStore::prune_usage): the oldest
/// `$2` counts before `$1`.
macro_rules! usage_prune {
    ($table:literal, $at:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE (",
            $at,
            ", org_id, client_id, subject, subject_id, outcome) IN \
             (SELECT ",
            $at,
            ", org_id, client_id, subject, subject_id, outcome FROM ",
            $table,
            " WHERE ",
            $at,
            " < $1 ORDER BY ",
            $at,
            " LIMIT $2)"
        )
    };
}
pub(crate) const USAGE_PRUNE_MINUTES: &str = usage_prune!("usage_minute", "minute");
pub(crate) const USAGE_PRUNE_HOURS: &str = usage_prune!("usage_hour", "hour");

/// The helpers [`implement_store!`]'s bodies use that only name the backend's types:
/// documents in and out of JSON, paging, and decoding a row's columns.
macro_rules! store_helpers {
    ($store:ident, $db:ident, $row:ty) => {
        impl $store {
            /// One batch of a pruning `DELETE`, whose two parameters are the cut-off and the batch
            /// size; how many rows it removed.
            async fn delete_batch(&self, sql: &'static str, cutoff: i64, limit: u32) -> Result<u64> {
                Ok(sqlx::query(sql)
                    .bind(cutoff)
                    .bind(limit.max(1) as i64)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected())
            }

            async fn docs<T: DeserializeOwned>(&self, q: sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>) -> Result<Vec<T>> {
                let rows = q.fetch_all(&self.pool).await.map_err(backend)?;
                rows.iter()
                    .map(|r| from_doc(r.get::<&str, _>("doc")))
                    .collect()
            }

            async fn doc<T: DeserializeOwned>(&self, q: sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>) -> Result<Option<T>> {
                let row = q.fetch_optional(&self.pool).await.map_err(backend)?;
                row.map(|r| from_doc(r.get::<&str, _>("doc"))).transpose()
            }

            /// Run one statement that changes one record, plus its change row.
            async fn write_one(&self, q: sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>, change: Change) -> Result<()> {
                let mut tx = self.begin().await?;
                let n = q.execute(&mut *tx).await.map_err(backend)?.rows_affected();
                expect_one(n)?;
                record(&mut tx, change).await?;
                tx.commit().await.map_err(backend)
            }
        }

        async fn org_ids(
            tx: &mut Transaction<'static, $db>,
            sql: &'static str,
            org: &OrgId,
        ) -> Result<Vec<String>> {
            Ok(sqlx::query(sql)
                .bind(org.as_str())
                .fetch_all(&mut **tx)
                .await
                .map_err(backend)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        }
        fn to_doc<T: Serialize>(v: &T) -> Result<String> {
            serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
        }

        fn from_doc<T: DeserializeOwned>(s: &str) -> Result<T> {
            serde_json::from_str(s).map_err(|e| StoreError::Backend(format!("decoding a record: {e}")))
        }

        fn limit(p: &PageRequest) -> i64 {
            p.limit.clamp(1, 1000) as i64
        }

        fn expect_one(rows: u64) -> Result<()> {
            if rows == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }

        fn hash_col(r: &$row, col: &str) -> Result<SecretHash> {
            SecretHash::from_hex(r.get::<&str, _>(col))
                .ok_or_else(|| StoreError::Backend(format!("decoding a token: bad {col}")))
        }

        fn user_link_row(r: &$row) -> Result<UserLink> {
            crate::user_link_from_row(
                r.get("hash"),
                r.get("kind"),
                r.get("user_id"),
                r.get("org_id"),
                r.get("role"),
                r.get("created_by"),
                r.get("created_at"),
                r.get("expires_at"),
                r.get("used_at"),
            )
        }

        async fn insert_user_link(tx: &mut Transaction<'static, $db>, link: &UserLink) -> Result<()> {
            sqlx::query(
                "INSERT INTO user_links (hash, kind, user_id, org_id, role, created_by, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(link.hash.to_hex())
            .bind(link.kind.as_str())
            .bind(link.user_id.as_str())
            .bind(link.org_id.as_ref().map(|o| o.as_str()))
            .bind(link.role.map(|r| r.as_str()))
            .bind(&link.created_by)
            .bind(link.created_at)
            .bind(link.expires_at)
            .bind(link.used_at)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
            Ok(())
        }

        fn id_col(r: &$row, col: &str) -> Result<RecordId> {
            RecordId::parse(r.get::<&str, _>(col))
                .map_err(|e| StoreError::Backend(format!("decoding {col}: {}", e.0)))
        }

        fn client_col(r: &$row) -> Result<ClientId> {
            ClientId::parse(r.get::<&str, _>("client_id"))
                .map_err(|e| StoreError::Backend(format!("decoding client_id: {}", e.0)))
        }

        fn request_token_row(r: &$row) -> Result<RequestToken> {
            let user: Option<&str> = r.get("user_id");
            let authorized = match user {
                Some(_) => Some(Authorization {
                    user_id: id_col(r, "user_id")?,
                    feed_id: id_col(r, "feed_id")?,
                }),
                None => None,
            };
            Ok(RequestToken {
                hash: hash_col(r, "hash")?,
                secret_hash: hash_col(r, "secret_hash")?,
                client_id: client_col(r)?,
                expires_at: r.get("expires_at"),
                authorized,
            })
        }

        fn revocation_of(r: &$row) -> Option<Revocation> {
            Some(Revocation {
                jti: r.get("jti"),
                client_id: ClientId::parse(r.get::<&str, _>("client_id")).ok()?,
                exp: r.get("exp"),
            })
        }
    };
}

pub(crate) use store_helpers;
