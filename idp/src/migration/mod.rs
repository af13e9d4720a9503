//! Bringing a portal's existing customers over, passwords and all (issue 15;
//! docs/migration.md): the import record, the JSON Lines reader and the
//! import run that `idp user import` and `POST /admin/api/users/import`
//! share. A capability: it uses the store, the legacy hash formats of
//! `credentials` and the sealing of TOTP secrets, never another capability.

mod import;
mod lines;
mod record;

pub use import::{BATCH, ImportOptions, Portals, RefusedLine, Summary, Target, import};
pub use lines::{MAX_LINE_BYTES, Records};
pub use record::{ImportRecord, RecordInput, Refusal, parse_line, parse_value};
