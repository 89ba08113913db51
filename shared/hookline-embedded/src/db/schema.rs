//! The database's tables and indexes, created when a database opens. Every statement
//! is `IF NOT EXISTS`, so opening an existing database changes nothing; columns added
//! since a table was first created are added by [`upgrade`]. Kept apart so the layout
//! the stores rely on reads in one place.

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    scopes TEXT NOT NULL,
    description TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    endpoint_url TEXT NOT NULL,
    listened_events TEXT NOT NULL,
    description TEXT,
    active INTEGER NOT NULL,
    headers TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    disabled_reason TEXT,
    disabled_at INTEGER,
    failing_since INTEGER,
    failed_deliveries INTEGER NOT NULL DEFAULT 0,
    signatures TEXT NOT NULL DEFAULT '["jwt"]',
    secrets TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS webhooks_by_tenant ON webhooks (tenant, created_at, id);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    document TEXT NOT NULL,
    fanned_out INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_tenant ON events (tenant, created_at, id);
CREATE INDEX IF NOT EXISTS events_to_fan_out ON events (seq) WHERE fanned_out = 0;
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status_code INTEGER,
    last_attempt_at INTEGER,
    next_attempt_at INTEGER,
    delivered_at INTEGER,
    created_at INTEGER NOT NULL,
    claimed_until INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_by_webhook ON deliveries (tenant, webhook_id, created_at, id);
CREATE TABLE IF NOT EXISTS attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    attempted_at INTEGER NOT NULL,
    status_code INTEGER,
    succeeded INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    response_body TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (delivery_id, attempted_at);
CREATE INDEX IF NOT EXISTS attempts_by_webhook ON attempts (tenant, webhook_id, attempted_at);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    due_at INTEGER NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0,
    job TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_due ON queue (due_at);
CREATE TABLE IF NOT EXISTS recoveries (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recoveries_by_webhook ON recoveries (tenant, webhook_id, created_at);
CREATE TABLE IF NOT EXISTS throttles (
    tenant TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (tenant, webhook_id)
);
CREATE TABLE IF NOT EXISTS analytics (
    tenant TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (tenant, webhook_id, hour, name)
) WITHOUT ROWID;
"#;

/// Columns added to tables after their first release, with their definitions: a
/// database created before gets them when it opens.
const ADDED_COLUMNS: [(&str, &str, &str); 7] = [
    ("webhooks", "signatures", "TEXT NOT NULL DEFAULT '[\"jwt\"]'"),
    ("webhooks", "secrets", "TEXT NOT NULL DEFAULT '[]'"),
    ("api_keys", "kind", "TEXT NOT NULL DEFAULT 'api_key'"),
    ("api_keys", "expires_at", "INTEGER"),
    ("api_keys", "used_at", "INTEGER"),
    ("api_keys", "parent", "TEXT"),
    ("webhooks", "policy", "TEXT NOT NULL DEFAULT '{}'"),
];

/// Indexes over [`ADDED_COLUMNS`], made once the columns exist.
const ADDED_INDEXES: &str = "CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant, kind, created_at);";

/// Adds the [`ADDED_COLUMNS`] a database lacks.
pub(super) fn upgrade(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool =
            conn.query_row(&format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"), [column], |r| r.get(0))?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))?;
        }
    }
    conn.execute_batch(ADDED_INDEXES)
}
