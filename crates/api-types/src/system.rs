//! (filled in by the typed-models work)
