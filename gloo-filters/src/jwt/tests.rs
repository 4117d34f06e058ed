//! Unit tests of the jwt module.
