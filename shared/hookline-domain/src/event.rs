//! Events: what a producer published, kept byte for byte as given and delivered as the
//! `event` object of every delivery body.

use crate::catalog::{CatalogError, EventCatalog, EventName};
use crate::ids::{EventId, TenantId};
use crate::time::{self, Timestamp};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Fields the server sets; a publisher may not send them.
pub const RESERVED_FIELDS: [&str; 2] = ["id", "created_at"];

/// Why an event was refused. [`EventError::code`] is the API's error code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// A required field is absent.
    #[error("event field {0:?} is required")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("event field {0:?} must be a string")]
    NotAString(&'static str),
    /// A field the server sets was sent.
    #[error("event field {0:?} is set by the server and must not be sent")]
    ReservedField(&'static str),
    /// `subject_type` + `event_type` do not form a valid name.
    #[error("subject_type and event_type do not form an event name: {0}")]
    InvalidName(String),
    /// The name is not in the catalogue.
    #[error("event {0:?} is not in the event catalogue (GET /webhooks/events lists it)")]
    UnknownEvent(String),
    /// The name is one of Hookline's operational events, which only Hookline publishes.
    #[error("event {0:?} is one of Hookline's operational events (subjects starting hookline_), which only Hookline publishes")]
    ReservedEvent(String),
    /// A stored document could not be read back.
    #[error("stored event is malformed: {0}")]
    Malformed(String),
}

impl EventError {
    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            EventError::MissingField(_) => "missing_field",
            EventError::NotAString(_) => "invalid_field",
            EventError::ReservedField(_) => "reserved_field",
            EventError::ReservedEvent(_) => "reserved_event",
            EventError::InvalidName(_) => "invalid_event_name",
            EventError::UnknownEvent(_) => "unknown_event",
            EventError::Malformed(_) => "malformed_event",
        }
    }
}

/// A published event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its id (a UUID).
    pub id: EventId,
    /// Whose it is.
    pub tenant: TenantId,
    /// `subject_type.event_type` in lowercase.
    pub name: EventName,
    /// When the server accepted it.
    pub created_at: Timestamp,
    /// The event object exactly as delivered: `id`, `created_at`, then every field the
    /// publisher sent, in its order and with its exact bytes.
    pub document: Box<RawValue>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.tenant == other.tenant
            && self.name == other.name
            && self.created_at == other.created_at
            && self.document.get() == other.document.get()
    }
}

fn string_field(fields: &IndexMap<String, Box<RawValue>>, name: &'static str) -> Result<String, EventError> {
    let raw = fields.get(name).ok_or(EventError::MissingField(name))?;
    serde_json::from_str::<String>(raw.get()).map_err(|_| EventError::NotAString(name))
}

impl Event {
    /// Accepts a publisher's fields: checks them, names the event, and adds `id` and
    /// `created_at`. Every other field is kept exactly as given.
    pub fn publish(
        tenant: TenantId,
        fields: IndexMap<String, Box<RawValue>>,
        catalog: &EventCatalog,
        now: Timestamp,
    ) -> Result<Self, EventError> {
        let event = Self::assemble(tenant, EventId::generate(), now, &fields)?;
        catalog.require(&event.name).map_err(|e| match e {
            CatalogError::UnknownEvent(n) => EventError::UnknownEvent(n),
            other => EventError::InvalidName(other.to_string()),
        })?;
        Ok(event)
    }

    /// Builds an event from its parts as stored or as an outside producer wrote them:
    /// id, creation time, and the JSON object text of every other field. The name is
    /// not checked against the catalogue (producers may write any name; only
    /// matching webhooks receive it).
    pub fn from_parts(tenant: TenantId, id: EventId, created_at: Timestamp, data: &str) -> Result<Self, EventError> {
        let fields: IndexMap<String, Box<RawValue>> =
            serde_json::from_str(data).map_err(|e| EventError::Malformed(format!("data is not a JSON object: {e}")))?;
        Self::assemble(tenant, id, created_at, &fields)
    }

    fn assemble(
        tenant: TenantId,
        id: EventId,
        created_at: Timestamp,
        fields: &IndexMap<String, Box<RawValue>>,
    ) -> Result<Self, EventError> {
        for reserved in RESERVED_FIELDS {
            if fields.contains_key(reserved) {
                return Err(EventError::ReservedField(reserved));
            }
        }
        let subject_type = string_field(fields, "subject_type")?;
        let event_type = string_field(fields, "event_type")?;
        let name = EventName::from_parts(&subject_type, &event_type).map_err(|e| EventError::InvalidName(e.to_string()))?;
        let mut doc = String::with_capacity(128 + fields.values().map(|v| v.get().len() + 24).sum::<usize>());
        doc.push_str("{\"id\":\"");
        doc.push_str(id.as_str());
        doc.push_str("\",\"created_at\":\"");
        doc.push_str(&time::format(&created_at));
        doc.push('"');
        for (k, v) in fields {
            doc.push(',');
            // Keys are re-escaped, values are the publisher's exact bytes.
            doc.push_str(&serde_json::to_string(k).map_err(|e| EventError::Malformed(e.to_string()))?);
            doc.push(':');
            doc.push_str(v.get());
        }
        doc.push('}');
        let document = RawValue::from_string(doc).map_err(|e| EventError::Malformed(e.to_string()))?;
        Ok(Event { id, tenant, name, created_at, document })
    }

    /// The JSON object text of every field but `id` and `created_at`, as
    /// [`Event::from_parts`] takes it: what an event store keeps beside the id and time.
    pub fn data_json(&self) -> String {
        let fields: IndexMap<String, Box<RawValue>> = serde_json::from_str(self.document.get()).unwrap_or_default();
        let mut out = String::with_capacity(self.document.get().len());
        out.push('{');
        for (k, v) in fields.iter().filter(|(k, _)| !RESERVED_FIELDS.contains(&k.as_str())) {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k).unwrap_or_default());
            out.push(':');
            out.push_str(v.get());
        }
        out.push('}');
        out
    }

    /// Reads an event back from its stored document (or one an outside producer wrote):
    /// it must be an object with a UUID `id`, an RFC 3339 `created_at`, and string
    /// `subject_type` and `event_type`.
    pub fn from_document(tenant: TenantId, document: Box<RawValue>) -> Result<Self, EventError> {
        #[derive(Deserialize)]
        struct Head {
            id: Option<String>,
            created_at: Option<String>,
            subject_type: Option<String>,
            event_type: Option<String>,
        }
        let head: Head = serde_json::from_str(document.get()).map_err(|e| EventError::Malformed(e.to_string()))?;
        let id = head.id.ok_or(EventError::MissingField("id"))?;
        let id = EventId::parse(&id).map_err(|e| EventError::Malformed(e.to_string()))?;
        let created_at = head.created_at.ok_or(EventError::MissingField("created_at"))?;
        let created_at =
            time::parse(&created_at).ok_or_else(|| EventError::Malformed(format!("created_at {created_at:?} is not RFC 3339")))?;
        let subject_type = head.subject_type.ok_or(EventError::MissingField("subject_type"))?;
        let event_type = head.event_type.ok_or(EventError::MissingField("event_type"))?;
        let name = EventName::from_parts(&subject_type, &event_type).map_err(|e| EventError::InvalidName(e.to_string()))?;
        Ok(Event { id, tenant, name, created_at, document })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_micros;

    fn fields(json: &str) -> IndexMap<String, Box<RawValue>> {
        serde_json::from_str(json).unwrap()
    }

    fn publish(json: &str) -> Result<Event, EventError> {
        Event::publish(TenantId::default_tenant(), fields(json), &EventCatalog::builtin(), from_micros(1_795_000_000_000_000))
    }

    #[test]
    fn publish_keeps_every_field_byte_for_byte_and_adds_id_and_created_at() {
        let e = publish(r#"{"subject_type":"project","event_type":"CREATED","subject_id":"34","n":12345678901234567890123,"f":1.10,"metadata":{"b":1,"a":[true,null]}}"#).unwrap();
        assert_eq!(e.name.as_str(), "project.created");
        let doc = e.document.get();
        assert!(doc.starts_with(&format!("{{\"id\":\"{}\",\"created_at\":\"2026-", e.id)), "{doc}");
        assert!(doc.ends_with(r#""subject_type":"project","event_type":"CREATED","subject_id":"34","n":12345678901234567890123,"f":1.10,"metadata":{"b":1,"a":[true,null]}}"#), "{doc}");
        let back = Event::from_document(TenantId::default_tenant(), e.document.clone()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn publish_refuses_bad_events_with_specific_codes() {
        assert_eq!(publish(r#"{"event_type":"CREATED"}"#).unwrap_err().code(), "missing_field");
        assert_eq!(publish(r#"{"subject_type":"project"}"#).unwrap_err().code(), "missing_field");
        assert_eq!(publish(r#"{"subject_type":1,"event_type":"CREATED"}"#).unwrap_err().code(), "invalid_field");
        assert_eq!(publish(r#"{"subject_type":"project","event_type":"CREATED","id":"x"}"#).unwrap_err().code(), "reserved_field");
        assert_eq!(publish(r#"{"subject_type":"project","event_type":"EXPLODED"}"#).unwrap_err().code(), "unknown_event");
        assert_eq!(publish(r#"{"subject_type":"Pro ject","event_type":"CREATED"}"#).unwrap_err().code(), "invalid_event_name");
    }

    #[test]
    fn parts_round_trip_through_data_json() {
        let e = publish(r#"{"subject_type":"project","event_type":"CREATED","x":[1, 2],"y":1.50}"#).unwrap();
        assert_eq!(e.data_json(), r#"{"subject_type":"project","event_type":"CREATED","x":[1, 2],"y":1.50}"#);
        let back = Event::from_parts(e.tenant.clone(), e.id.clone(), e.created_at, &e.data_json()).unwrap();
        assert_eq!(back, e);
        let err = Event::from_parts(e.tenant.clone(), e.id.clone(), e.created_at, r#"{"event_type":"CREATED"}"#).unwrap_err();
        assert_eq!(err, EventError::MissingField("subject_type"));
        assert!(Event::from_parts(e.tenant.clone(), e.id.clone(), e.created_at, "[]").is_err());
    }

    #[test]
    fn producer_documents_need_id_created_at_and_type_fields() {
        let doc = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        let ok = doc(
            r#"{"id":"b14cb4b0-54fc-4b31-8051-72c9dd55cf61","created_at":"2026-11-23T10:00:00Z","subject_type":"project","event_type":"UPDATED"}"#,
        );
        assert_eq!(Event::from_document(TenantId::default_tenant(), ok).unwrap().name.as_str(), "project.updated");
        let missing = doc(r#"{"id":"b14cb4b0-54fc-4b31-8051-72c9dd55cf61","subject_type":"project","event_type":"UPDATED"}"#);
        assert_eq!(Event::from_document(TenantId::default_tenant(), missing).unwrap_err(), EventError::MissingField("created_at"));
        assert!(Event::from_document(TenantId::default_tenant(), doc("[1]")).is_err());
        let huge = doc(
            r#"{"id":"b14cb4b0-54fc-4b31-8051-72c9dd55cf61","created_at":"2026-11-23T10:00:00Z","subject_type":"project","event_type":"UPDATED","n":1e999999}"#,
        );
        assert!(Event::from_document(TenantId::default_tenant(), huge).is_ok(), "numbers beyond f64 are kept, not parsed");
    }
}
