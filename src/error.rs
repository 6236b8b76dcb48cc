//! Server errors.
