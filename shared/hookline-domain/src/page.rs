//! Keyset pagination: `?limit=` and an opaque `?cursor=` naming the last item seen.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 25;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// Where a page starts: the sort key (creation time in microseconds) and id of the last
/// item of the previous page. Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Sort key of the last item seen.
    pub micros: i64,
    /// Id of the last item seen (breaks ties).
    pub id: String,
}

impl Cursor {
    /// The cursor as clients see it.
    pub fn encode(&self) -> String {
        B64.encode(format!("{}:{}", self.micros, self.id))
    }

    /// Reads a client's cursor.
    pub fn decode(s: &str) -> Option<Self> {
        if s.len() > 256 {
            return None;
        }
        let raw = String::from_utf8(B64.decode(s).ok()?).ok()?;
        let (micros, id) = raw.split_once(':')?;
        let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return None;
        }
        Some(Cursor { micros: micros.parse().ok()?, id: id.to_owned() })
    }
}

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1 to [`MAX_LIMIT`].
    pub limit: u32,
    /// Start after this item; `None` is the first page.
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { limit: DEFAULT_LIMIT, after: None }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts, if there may be one.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items read in order: the extra one only
    /// says that there is more.
    pub fn from_overfetch(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more { items.last().map(key) } else { None };
        Page { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor { micros: 1_795_000_000_000_000, id: "wh_0123".into() };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("%%%"), None);
        assert_eq!(Cursor::decode(&B64.encode("x:wh_1")), None);
        assert_eq!(Cursor::decode(&B64.encode("1:../../etc")), None);
    }

    #[test]
    fn overfetch_sets_next_cursor_only_when_more_exist() {
        let key = |i: &i64| Cursor { micros: *i, id: "x".into() };
        let p = Page::from_overfetch(vec![1, 2, 3], 2, key);
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next_cursor.map(|c| c.micros), Some(2));
        let p = Page::from_overfetch(vec![1, 2], 2, key);
        assert_eq!(p.next_cursor, None);
    }
}
