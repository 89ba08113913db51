//! API keys, portal links and portal sessions, by the hash of their secret.

use crate::sql::is_unique_violation;
use crate::storage::SqliteStorage;
use async_trait::async_trait;
use hookline_domain::auth::{ApiKey, CredentialKind, Scope};
use hookline_domain::ids::{ApiKeyId, TenantId};
use hookline_domain::ports::{ApiKeyStore, MAX_LISTED_KEYS, StoreError};
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use rusqlite::{OptionalExtension, Row, params};

const COLUMNS: &str = "id, tenant, scopes, description, created_at, hash, kind, expires_at, used_at, parent";

/// A row as read, before its text is checked.
struct KeyRow {
    id: String,
    tenant: String,
    scopes: String,
    description: Option<String>,
    created_at: i64,
    hash: String,
    kind: String,
    expires_at: Option<i64>,
    used_at: Option<i64>,
    parent: Option<String>,
}

impl KeyRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
        Ok(KeyRow {
            id: r.get(0)?,
            tenant: r.get(1)?,
            scopes: r.get(2)?,
            description: r.get(3)?,
            created_at: r.get(4)?,
            hash: r.get(5)?,
            kind: r.get(6)?,
            expires_at: r.get(7)?,
            used_at: r.get(8)?,
            parent: r.get(9)?,
        })
    }

    fn key(self) -> anyhow::Result<ApiKey> {
        let scopes: Vec<String> = serde_json::from_str(&self.scopes)?;
        Ok(ApiKey {
            id: ApiKeyId::parse(&self.id)?,
            tenant: TenantId::parse(&self.tenant)?,
            scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            description: self.description,
            created_at: from_micros(self.created_at),
            hash: self.hash,
            kind: CredentialKind::parse(&self.kind).ok_or_else(|| anyhow::anyhow!("unknown credential kind {:?}", self.kind))?,
            expires_at: self.expires_at.map(from_micros),
            used_at: self.used_at.map(from_micros),
            parent: self.parent,
        })
    }
}

fn micros(t: &Option<Timestamp>) -> Option<i64> {
    t.as_ref().map(to_micros)
}

#[async_trait]
impl ApiKeyStore for SqliteStorage {
    async fn insert(&self, k: &ApiKey) -> Result<(), StoreError> {
        let k = k.clone();
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = serde_json::to_string(&scopes).map_err(anyhow::Error::from)?;
        self.shared
            .db
            .write(move |c| {
                // Portal links and sessions end; those ended a day ago go when another
                // is made, so the table does not grow with every portal visit.
                if k.kind != CredentialKind::Key {
                    let day_ago = to_micros(&k.created_at) - 86_400_000_000;
                    c.prepare_cached("DELETE FROM api_keys WHERE kind != 'api_key' AND expires_at < ?1")?.execute([day_ago])?;
                }
                let r = c.execute(
                    "INSERT INTO api_keys (id, hash, tenant, scopes, description, created_at, kind, expires_at, used_at, parent) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        k.id.as_str(),
                        k.hash,
                        k.tenant.as_str(),
                        scopes,
                        k.description,
                        to_micros(&k.created_at),
                        k.kind.as_str(),
                        micros(&k.expires_at),
                        micros(&k.used_at),
                        k.parent
                    ],
                );
                match r {
                    Ok(_) => Ok(Ok(())),
                    Err(e) if is_unique_violation(&e) => Ok(Err(StoreError::Conflict)),
                    Err(e) => Err(e.into()),
                }
            })
            .await?
    }

    async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError> {
        let hash = hash.to_owned();
        let row = self
            .shared
            .db
            .read(move |c| {
                Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE hash = ?1"))?
                    .query_row([&hash], KeyRow::read)
                    .optional()?)
            })
            .await?;
        Ok(row.ok_or(StoreError::NotFound)?.key()?)
    }

    async fn list(&self, tenant: Option<&TenantId>, kind: CredentialKind) -> Result<Vec<ApiKey>, StoreError> {
        let tenant = tenant.map(|t| t.as_str().to_owned());
        let rows = self
            .shared
            .db
            .read(move |c| {
                let sql = format!(
                    "SELECT {COLUMNS} FROM api_keys WHERE kind = ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY created_at, id LIMIT {MAX_LISTED_KEYS}"
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(params![kind.as_str(), tenant], KeyRow::read)?.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        Ok(rows.into_iter().map(KeyRow::key).collect::<anyhow::Result<Vec<_>>>()?)
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId, kind: CredentialKind) -> Result<ApiKey, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.as_str().to_owned());
        let row = self
            .shared
            .db
            .write(move |c| {
                let sql = format!("DELETE FROM api_keys WHERE id = ?1 AND tenant = ?2 AND kind = ?3 RETURNING {COLUMNS}");
                Ok(c.prepare_cached(&sql)?.query_row(params![id, tenant, kind.as_str()], KeyRow::read).optional()?)
            })
            .await?;
        Ok(row.ok_or(StoreError::NotFound)?.key()?)
    }

    async fn use_link(&self, hash: &str, now: Timestamp, keep_until: Timestamp) -> Result<ApiKey, StoreError> {
        let hash = hash.to_owned();
        let (now, until) = (to_micros(&now), to_micros(&keep_until));
        let (updated, exists) = self
            .shared
            .db
            .write(move |c| {
                let sql = format!(
                    "UPDATE api_keys SET used_at = ?2, expires_at = ?3 \
                     WHERE hash = ?1 AND kind = 'portal_link' AND used_at IS NULL AND expires_at > ?2 RETURNING {COLUMNS}"
                );
                let updated = c.prepare_cached(&sql)?.query_row(params![hash, now, until], KeyRow::read).optional()?;
                let exists = updated.is_some()
                    || c.prepare_cached("SELECT 1 FROM api_keys WHERE hash = ?1")?.query_row([&hash], |_| Ok(())).optional()?.is_some();
                Ok((updated, exists))
            })
            .await?;
        match updated {
            Some(row) => Ok(row.key()?),
            None if exists => Err(StoreError::Conflict),
            None => Err(StoreError::NotFound),
        }
    }
}
