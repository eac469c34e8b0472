//! Configuration file (TOML) and its resolution into `Settings`.
