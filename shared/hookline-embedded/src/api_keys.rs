//! API keys, by the hash of their secret.

use crate::sql::is_unique_violation;
use crate::storage::SqliteStorage;
use async_trait::async_trait;
use hookline_domain::auth::{ApiKey, Scope};
use hookline_domain::ids::{ApiKeyId, TenantId};
use hookline_domain::ports::{ApiKeyStore, StoreError};
use hookline_domain::time::{from_micros, to_micros};
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl ApiKeyStore for SqliteStorage {
    async fn insert(&self, k: &ApiKey) -> Result<(), StoreError> {
        let k = k.clone();
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = serde_json::to_string(&scopes).map_err(anyhow::Error::from)?;
        self.shared
            .db
            .write(move |c| {
                let r = c.execute(
                    "INSERT INTO api_keys (id, hash, tenant, scopes, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![k.id.as_str(), k.hash, k.tenant.as_str(), scopes, k.description, to_micros(&k.created_at)],
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
        self.shared
            .db
            .read(move |c| {
                let row = c
                    .prepare_cached("SELECT id, tenant, scopes, description, created_at, hash FROM api_keys WHERE hash = ?1")?
                    .query_row([&hash], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    })
                    .optional()?;
                let Some((id, tenant, scopes, description, created_at, hash)) = row else { return Ok(None) };
                let scopes: Vec<String> = serde_json::from_str(&scopes)?;
                Ok(Some(ApiKey {
                    id: ApiKeyId::parse(&id)?,
                    tenant: TenantId::parse(&tenant)?,
                    scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                    description,
                    created_at: from_micros(created_at),
                    hash,
                }))
            })
            .await?
            .ok_or(StoreError::NotFound)
    }
}
