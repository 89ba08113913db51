//! The event catalogue (which event names exist), event names, and the patterns a
//! webhook listens with (`project.created`, `project.*`, `*.created`, `*`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// LogAlto's event subjects: the built-in catalogue is each of these × each action.
pub const BUILTIN_SUBJECTS: [&str; 8] = [
    "project",
    "activity",
    "indicator",
    "data_table_record",
    "indicator_actual",
    "indicator_combination_actual",
    "indicator_target",
    "indicator_combination_target",
];

/// LogAlto's event actions.
pub const BUILTIN_ACTIONS: [&str; 3] = ["created", "updated", "deleted"];

/// Longest subject or action accepted, so names stay printable and indexable.
const MAX_PART_LEN: usize = 64;

fn valid_part(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_PART_LEN && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// An event's name: `subject.action`, both parts lowercase.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventName {
    name: String,
    dot: usize,
}

/// Why a name, pattern or catalogue was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    /// Not `subject.action` in lowercase letters, digits, `_` and `-`.
    #[error("{0:?} is not an event name of the form subject.action")]
    InvalidName(String),
    /// Well-formed, but not in the catalogue.
    #[error("{0:?} is not in the event catalogue")]
    UnknownEvent(String),
    /// A listened-events entry that is neither a catalogue name nor a wildcard over it.
    #[error("{0:?} is not a catalogue event name, subject.*, *.action or *")]
    InvalidPattern(String),
    /// The catalogue file has no names.
    #[error("the event catalogue is empty")]
    Empty,
}

impl EventName {
    /// Parses `subject.action`.
    pub fn parse(s: &str) -> Result<Self, CatalogError> {
        let (subject, action) = s.split_once('.').ok_or_else(|| CatalogError::InvalidName(s.to_owned()))?;
        if !valid_part(subject) || !valid_part(action) {
            return Err(CatalogError::InvalidName(s.to_owned()));
        }
        Ok(EventName { name: s.to_owned(), dot: subject.len() })
    }

    /// Whether Hookline itself publishes it: an operational event (its subject starts
    /// with [`OPERATIONAL_PREFIX`]). Wildcards over every subject (`*`, `*.action`) do
    /// not match these; a webhook names them (`hookline_webhook.*`, or exactly).
    pub fn is_operational(&self) -> bool {
        self.subject().starts_with(OPERATIONAL_PREFIX)
    }

    /// The name of an event with these `subject_type` and `event_type` fields:
    /// `subject_type` + `.` + lowercase `event_type` (`project` + `CREATED` → `project.created`).
    pub fn from_parts(subject_type: &str, event_type: &str) -> Result<Self, CatalogError> {
        Self::parse(&format!("{subject_type}.{}", event_type.to_ascii_lowercase()))
    }

    /// The subject (`project` in `project.created`).
    pub fn subject(&self) -> &str {
        &self.name[..self.dot]
    }

    /// The action (`created` in `project.created`).
    pub fn action(&self) -> &str {
        &self.name[self.dot + 1..]
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl TryFrom<String> for EventName {
    type Error = CatalogError;
    fn try_from(s: String) -> Result<Self, CatalogError> {
        Self::parse(&s)
    }
}

impl From<EventName> for String {
    fn from(n: EventName) -> String {
        n.name
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Subjects starting with this are Hookline's own: tenants cannot publish them.
pub const OPERATIONAL_PREFIX: &str = "hookline_";

/// Hookline's operational events, in every catalogue: a webhook disabled (a 410, or a
/// failing streak), a webhook that was failing delivering again, a delivery failed for
/// good, a signing secret rotated.
pub const OPERATIONAL_EVENTS: [&str; 4] =
    ["hookline_webhook.disabled", "hookline_webhook.recovered", "hookline_delivery.failed", "hookline_secret.rotated"];

/// The names of the events tenants can publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCatalog {
    names: BTreeSet<EventName>,
}

impl EventCatalog {
    /// LogAlto's event catalogue: 8 subjects × created/updated/deleted.
    pub fn builtin() -> Self {
        let names = BUILTIN_SUBJECTS
            .iter()
            .flat_map(|s| BUILTIN_ACTIONS.iter().map(move |a| format!("{s}.{a}")))
            .filter_map(|n| EventName::parse(&n).ok())
            .collect();
        EventCatalog { names }.with_operational()
    }

    /// A catalogue of the given names; each must be `subject.action`.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Result<Self, CatalogError> {
        let names = names.into_iter().map(|n| EventName::parse(n.as_ref())).collect::<Result<BTreeSet<_>, _>>()?;
        if names.is_empty() {
            return Err(CatalogError::Empty);
        }
        Ok(EventCatalog { names }.with_operational())
    }

    fn with_operational(mut self) -> Self {
        self.names.extend(OPERATIONAL_EVENTS.iter().filter_map(|n| EventName::parse(n).ok()));
        self
    }

    /// Reads a catalogue from a JSON array of names.
    pub fn from_json(json: &str) -> Result<Self, anyhow::Error> {
        let names: Vec<String> = serde_json::from_str(json)?;
        Ok(Self::new(names)?)
    }

    /// Whether `name` is in the catalogue.
    pub fn contains(&self, name: &EventName) -> bool {
        self.names.contains(name)
    }

    /// Every name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &EventName> {
        self.names.iter()
    }

    /// Checks that a published event's name is in the catalogue.
    pub fn require(&self, name: &EventName) -> Result<(), CatalogError> {
        if self.contains(name) { Ok(()) } else { Err(CatalogError::UnknownEvent(name.to_string())) }
    }

    /// The catalogue names a set of patterns covers, sorted and without repeats.
    pub fn expand<'a>(&'a self, patterns: &'a [EventPattern]) -> impl Iterator<Item = &'a EventName> + 'a {
        self.names.iter().filter(|n| patterns.iter().any(|p| p.matches(n)))
    }
}

/// One entry of a webhook's `listened_events`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EventPattern {
    /// `*`: every event.
    All,
    /// `subject.*`: every action on one subject.
    Subject(String),
    /// `*.action`: one action on every subject.
    Action(String),
    /// One catalogue name.
    Exact(EventName),
}

impl EventPattern {
    /// Parses a pattern, checking it against the catalogue: an exact name must be in
    /// it, and a wildcard must cover at least one of its names.
    pub fn parse(s: &str, catalog: &EventCatalog) -> Result<Self, CatalogError> {
        let pattern = Self::parse_stored(s)?;
        if catalog.names().any(|n| pattern.matches(n)) { Ok(pattern) } else { Err(CatalogError::InvalidPattern(s.to_owned())) }
    }

    /// Reads back a pattern an adapter stored, without the catalogue check: a pattern
    /// that was valid when written stays readable if the catalogue later shrinks.
    pub fn parse_stored(s: &str) -> Result<Self, CatalogError> {
        let bad = || CatalogError::InvalidPattern(s.to_owned());
        Ok(match s {
            "*" => EventPattern::All,
            _ => match s.split_once('.').ok_or_else(bad)? {
                ("*", action) if valid_part(action) => EventPattern::Action(action.to_owned()),
                (subject, "*") if valid_part(subject) => EventPattern::Subject(subject.to_owned()),
                _ => EventPattern::Exact(EventName::parse(s).map_err(|_| bad())?),
            },
        })
    }

    /// Whether an event with this name matches.
    pub fn matches(&self, name: &EventName) -> bool {
        match self {
            EventPattern::All => !name.is_operational(),
            EventPattern::Subject(s) => name.subject() == s,
            EventPattern::Action(a) => !name.is_operational() && name.action() == a,
            EventPattern::Exact(n) => n == name,
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventPattern::All => f.write_str("*"),
            EventPattern::Subject(s) => write!(f, "{s}.*"),
            EventPattern::Action(a) => write!(f, "*.{a}"),
            EventPattern::Exact(n) => f.write_str(n.as_str()),
        }
    }
}

impl fmt::Debug for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for EventPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> EventName {
        EventName::parse(s).unwrap()
    }

    #[test]
    fn builtin_catalogue_is_logalto_subjects_times_actions() {
        let c = EventCatalog::builtin();
        assert_eq!(c.names().filter(|n| !n.is_operational()).count(), 24);
        assert!(c.contains(&name("indicator_combination_target.deleted")));
        assert!(OPERATIONAL_EVENTS.iter().all(|n| c.contains(&name(n))), "operational events are in every catalogue");
        let all = [EventPattern::All];
        assert!(c.expand(&all).all(|n| !n.is_operational()), "* does not reach them");
        let ops = [EventPattern::parse("hookline_webhook.*", &c).unwrap()];
        assert_eq!(c.expand(&ops).count(), 2);
        assert!(!EventPattern::parse("*.disabled", &c).is_ok_and(|p| p.matches(&name("hookline_webhook.disabled"))));
    }

    #[test]
    fn event_name_is_subject_dot_lowercase_event_type() {
        let n = EventName::from_parts("project", "CREATED").unwrap();
        assert_eq!(n.as_str(), "project.created");
        assert_eq!(n.subject(), "project");
        assert_eq!(n.action(), "created");
        assert!(EventName::from_parts("Project", "CREATED").is_err());
        assert!(EventName::from_parts("", "CREATED").is_err());
    }

    #[test]
    fn patterns_match_as_documented() {
        let c = EventCatalog::builtin();
        let p = |s| EventPattern::parse(s, &c).unwrap();
        assert!(p("*").matches(&name("project.created")));
        assert!(p("project.*").matches(&name("project.deleted")));
        assert!(!p("project.*").matches(&name("activity.deleted")));
        assert!(p("*.created").matches(&name("activity.created")));
        assert!(!p("*.created").matches(&name("activity.updated")));
        assert!(p("project.created").matches(&name("project.created")));
        assert!(!p("project.created").matches(&name("project.updated")));
    }

    #[test]
    fn patterns_outside_the_catalogue_are_refused() {
        let c = EventCatalog::builtin();
        for bad in [
            "",
            "project",
            "project.*.x",
            "*.*",
            "proj*.created",
            "unknown.created",
            "project.exploded",
            "nobody.*",
            "*.exploded",
            "PROJECT.created",
            "project.",
            ".created",
        ] {
            assert_eq!(EventPattern::parse(bad, &c), Err(CatalogError::InvalidPattern(bad.to_owned())), "{bad}");
        }
    }

    #[test]
    fn expand_lists_covered_catalogue_names() {
        let c = EventCatalog::builtin();
        let ps = vec![EventPattern::parse("project.*", &c).unwrap(), EventPattern::parse("*.created", &c).unwrap()];
        let names: Vec<_> = c.expand(&ps).map(|n| n.to_string()).collect();
        assert_eq!(names.len(), 3 + 7);
        assert!(names.contains(&"activity.created".to_owned()));
    }

    #[test]
    fn catalogue_from_json() {
        let c = EventCatalog::from_json(r#"["order.paid","order.refunded"]"#).unwrap();
        assert_eq!(c.names().filter(|n| !n.is_operational()).count(), 2);
        assert!(EventCatalog::from_json("[]").is_err());
        assert!(EventCatalog::from_json(r#"["nodot"]"#).is_err());
    }
}
