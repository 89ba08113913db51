//! The API against its description: `openapi.json` documents exactly the routes the
//! router serves, and real answers match the document's schemas.

mod agreement;
mod analytics;
mod conformance;
mod console;
mod policy;
mod portal;
mod recovery;
mod support;
