//! placeholder, being written
use serde::{Deserialize, Serialize};
/// placeholder
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {}
