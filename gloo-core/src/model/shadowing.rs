//! placeholder, being written
use serde::{Deserialize, Serialize};
